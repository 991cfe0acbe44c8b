// The fake Entra ID's test controls: its movable clock, its request counters and log of
// token-endpoint requests, injected failures and held answers. {@link FakeEntraId}'s methods of the
// same names delegate here; the token endpoint (http.ts) consults them for every request.
import type { FakeFailureKind, FakeGrantType, TokenRequestRecord } from './types';
import { sha256 } from './tokens';

/** A failure waiting to be injected into the next matching token requests. */
interface PendingFailure {
  kind: FakeFailureKind;
  grantType?: string;
  remaining: number;
}

export class Controls {
  readonly #tokenRequests: TokenRequestRecord[];
  readonly #onTokenRequest: (record: TokenRequestRecord) => void;
  readonly #requestCounts = new Map<string, number>();
  readonly #failures: PendingFailure[] = [];
  #clockOffsetMs = 0;
  /** Pending while token answers are held (see {@link Controls.holdTokenResponses}). */
  #held: Promise<void> | undefined;

  /**
   * @param tokenRequests - where every token-endpoint request is logged, in arrival order
   * @param onTokenRequest - told of every token-endpoint request when it arrives
   */
  constructor(tokenRequests: TokenRequestRecord[], onTokenRequest: (record: TokenRequestRecord) => void) {
    this.#tokenRequests = tokenRequests;
    this.#onTokenRequest = onTokenRequest;
  }

  /** Epoch ms on the fake's clock. */
  now(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  advanceTime(ms: number): void {
    this.#clockOffsetMs += ms;
  }

  /** Counts a request served by `endpoint`. */
  count(endpoint: string): void {
    this.#requestCounts.set(endpoint, this.requestCount(endpoint) + 1);
  }

  requestCount(endpoint: string): number {
    return this.#requestCounts.get(endpoint) ?? 0;
  }

  /** Logs and announces a token-endpoint request; the record's `outcome` is updated as it is answered. */
  recordTokenRequest(record: TokenRequestRecord): void {
    this.#tokenRequests.push(record);
    this.#onTokenRequest(record);
  }

  tokenCallCount(filter: { grantType?: FakeGrantType; code?: string }): number {
    const codeHash = filter.code === undefined ? undefined : sha256(filter.code);
    return this.#tokenRequests.filter(
      (record) =>
        (filter.grantType === undefined || record.grantType === filter.grantType) &&
        (codeHash === undefined || record.codeHash === codeHash),
    ).length;
  }

  injectFailure(kind: FakeFailureKind, options: { count?: number; grantType?: FakeGrantType }): void {
    this.#failures.push({ kind, remaining: options.count ?? 1, ...(options.grantType !== undefined && { grantType: options.grantType }) });
  }

  /** The failure to inject into this token request, if any (and one fewer left of it). */
  takeFailure(grantType: string): FakeFailureKind | undefined {
    const index = this.#failures.findIndex((failure) => failure.grantType === undefined || failure.grantType === grantType);
    if (index < 0) return undefined;
    const failure = this.#failures[index]!;
    if (--failure.remaining <= 0) this.#failures.splice(index, 1);
    return failure.kind;
  }

  /** Pending while token answers are held; `undefined` when they are not. */
  get held(): Promise<void> | undefined {
    return this.#held;
  }

  holdTokenResponses(): () => void {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    this.#held = held;
    return () => {
      if (this.#held === held) this.#held = undefined;
      release();
    };
  }
}
