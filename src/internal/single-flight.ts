// Concurrent callers with the same key share one pending promise. The entry is removed when the
// promise settles, and only if it is still the current one, so the map is empty when idle.

export class SingleFlight<T> {
  private readonly pending = new Map<string, Promise<T>>();

  /** Number of keys in flight (empty when idle). */
  get size(): number {
    return this.pending.size;
  }

  /** Runs `work` unless a call with `key` is in flight; then joins it. `joined` says which. */
  run(key: string, work: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const current = this.pending.get(key);
    if (current) return { promise: current, joined: true };
    const promise = (async () => work())().finally(() => {
      if (this.pending.get(key) === promise) this.pending.delete(key);
    });
    this.pending.set(key, promise);
    return { promise, joined: false };
  }
}
