// For tests of what keeps the L1 coherent: an L1Sink that records what RedisInvalidations tells
// it, in order (a test awaits the next occurrence of a call instead of sleeping), and the tracking
// connections in a CLIENT LIST.
import { TRACKING_CONNECTION_NAME } from '../../src/cache/l1/redis-invalidations';
import type { L1Sink } from '../../src/cache/l1/redis-invalidations';

/** The ids of the L1 tracking connections in the text of a `CLIENT LIST` reply. */
export function trackingConnectionIdsIn(clientList: unknown): string[] {
  return String(clientList)
    .split('\n')
    .filter((line) => line.includes(` name=${TRACKING_CONNECTION_NAME} `))
    .map((line) => /\bid=(\d+)/.exec(line)![1]!);
}

/** `coherent:true`, `coherent:false`, `invalidate:<storage key>` or `flush`. */
export type L1Call = string;

export class L1Recorder implements L1Sink {
  readonly calls: L1Call[] = [];
  readonly #waiters: { call: L1Call; from: number; resolve: () => void }[] = [];

  setCoherent(coherent: boolean): void {
    this.#record(`coherent:${coherent}`);
  }

  invalidate(storageKey: string): void {
    this.#record(`invalidate:${storageKey}`);
  }

  flush(): void {
    this.#record('flush');
  }

  /** How many calls so far: pass it to {@link until} and {@link since}. */
  get mark(): number {
    return this.calls.length;
  }

  /** The calls recorded from `mark` on. */
  since(mark: number): L1Call[] {
    return this.calls.slice(mark);
  }

  /** Resolves once `call` has been recorded at or after `from` (already, or later). */
  until(call: L1Call, from = 0): Promise<void> {
    if (this.calls.indexOf(call, from) !== -1) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ call, from, resolve }));
  }

  #record(call: L1Call): void {
    this.calls.push(call);
    for (const waiter of [...this.#waiters]) {
      if (waiter.call !== call) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}
