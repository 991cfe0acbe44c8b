// An L1Sink that records what RedisInvalidations tells it, in order, and lets a test await the
// next occurrence of one call instead of sleeping.
import type { L1Sink } from '../../src/cache/l1/redis-invalidations';

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
