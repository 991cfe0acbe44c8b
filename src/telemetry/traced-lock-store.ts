/**
 * The lock store as redeem-once and fleet single flight use it, traced: each claim, wait,
 * completion and settlement is a span (`msal_dc lock.claim`, `lock.wait`, `lock.complete`,
 * `lock.settle`, a child of the active context) with its purpose and result, and each wait counts
 * in `msal_dc.lock.wait.duration`. Keys are hashes already: a span names the code by its keyed hash,
 * or the flight by its hash, as the events do (never a round's partition version). Everything else
 * (locks, withdrawals, connections) passes through untouched.
 */
import type { Span } from '@opentelemetry/api';
import type { Claim, ClaimOptions, Lease, LockOptions, LockStore } from '../lock/lock-store';
import { flightHashOfClaimKey } from '../storage-keys';
import { ATTR, SPAN } from './names';
import type { LockPurpose } from './names';
import { secondsSince } from './telemetry';
import type { Telemetry } from './telemetry';

export class TracedLockStore implements LockStore {
  readonly withdraw?: (lease: Lease) => Promise<boolean>;
  readonly connect?: () => Promise<void>;
  readonly #inner: LockStore;
  readonly #telemetry: Telemetry;
  readonly #purpose: LockPurpose;
  readonly #waitAttrs: Readonly<Record<string, string>>;
  /** The attribute that names what a key is about: the code's keyed hash, or the flight's hash (as the events name them). */
  readonly #keyAttribute: string;
  readonly #hashOf: (key: string) => string | undefined;

  constructor(inner: LockStore, telemetry: Telemetry, purpose: LockPurpose) {
    this.#inner = inner;
    this.#telemetry = telemetry;
    this.#purpose = purpose;
    this.#waitAttrs = Object.freeze({ [ATTR.lockPurpose]: purpose });
    this.#keyAttribute = purpose === 'redemption' ? ATTR.codeHash : ATTR.flightHash;
    this.#hashOf = purpose === 'redemption' ? (key) => key : (key) => flightHashOfClaimKey(key)?.slice(0, 32);
    // Only a store that can withdraw a claim gets the method: redeem-once checks for it.
    if (inner.withdraw) this.withdraw = (lease) => inner.withdraw!(lease);
    if (inner.connect) this.connect = () => inner.connect!();
  }

  acquire(key: string, options: LockOptions): Promise<Lease> {
    return this.#inner.acquire(key, options);
  }

  claim(key: string, options: ClaimOptions): Promise<Claim> {
    return this.#traced(
      SPAN.lockClaim,
      key,
      () => this.#inner.claim(key, options),
      (claim) => claim.state,
    );
  }

  complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean> {
    return this.#traced(
      SPAN.lockComplete,
      lease.key,
      () => this.#inner.complete(lease, outcome, recordTtlMs),
      (accepted) => (accepted ? 'recorded' : 'refused'),
    );
  }

  settle(key: string, outcome: string, recordTtlMs: number): Promise<string> {
    return this.#traced(
      SPAN.lockSettle,
      key,
      () => this.#inner.settle(key, outcome, recordTtlMs),
      () => 'settled',
    );
  }

  async waitForChange(key: string, timeoutMs: number): Promise<void> {
    const started = performance.now();
    try {
      await this.#traced(
        SPAN.lockWait,
        key,
        () => this.#inner.waitForChange(key, timeoutMs),
        () => 'ended',
      );
    } finally {
      this.#telemetry.instruments.lockWaitDuration.record(secondsSince(started), this.#waitAttrs);
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #traced<T>(name: string, key: string, call: () => Promise<T>, result: (value: T) => string): Promise<T> {
    const { tracer, internalSpan } = this.#telemetry;
    const span = tracer.startSpan(name, internalSpan);
    if (span.isRecording()) {
      span.setAttribute(ATTR.lockPurpose, this.#purpose);
      const hash = this.#hashOf(key);
      if (hash !== undefined) span.setAttribute(this.#keyAttribute, hash);
    }
    try {
      const value = await call();
      if (span.isRecording()) span.setAttribute(ATTR.lockResult, result(value));
      return value;
    } catch (error) {
      this.#fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  #fail(span: Span, error: unknown): void {
    if (!span.isRecording()) return;
    span.setAttribute(ATTR.lockResult, 'error');
    this.#telemetry.failSpan(span, error);
  }
}
