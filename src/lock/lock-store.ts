/**
 * The lock-store contract. A lock store hands out leases on string keys: one holder per key at a
 * time, for at most `leaseMs` unless extended, with a fencing number that grows with every grant
 * so a stale holder can be told from a newer one. Implementations: MemoryLockStore (one process),
 * RedisLockStore (every process that shares the Redis).
 */

/** How to acquire a lease. */
export interface LockOptions {
  /** How long the lease lasts unless extended; a holder that dies frees the key after this. */
  leaseMs: number;
  /** How long to wait for the key before giving up with `LockTimeoutError`. */
  waitTimeoutMs: number;
}

/** A held lock. */
export interface Lease {
  readonly key: string;
  /** Fencing number: larger for every later grant of the same key. */
  readonly fence: number;
  /** Extends the lease to `leaseMs` from now. Returns `false` if it was already lost. */
  extend(leaseMs: number): Promise<boolean>;
  /** Releases the lock if this lease still holds it. Idempotent; never throws for a lost lease. */
  release(): Promise<void>;
}

/** A store of leases. */
export interface LockStore {
  /**
   * Waits for and takes the lock on `key`.
   *
   * @throws LockTimeoutError when it is not free within `waitTimeoutMs`
   * @throws StoreUnavailableError when the store does not answer
   */
  acquire(key: string, options: LockOptions): Promise<Lease>;
  /** Releases resources (connections, timers). Leases still held expire on their own. */
  close(): Promise<void>;
}

/** Runs `work` while holding the lock on `key`, releasing it however `work` ends. */
export async function withLock<T>(store: LockStore, key: string, options: LockOptions, work: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = await store.acquire(key, options);
  try {
    return await work(lease);
  } finally {
    await lease.release();
  }
}
