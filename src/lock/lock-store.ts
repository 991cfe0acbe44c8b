/**
 * The lock-store contract. A lock store hands out leases on string keys (one holder per key at a
 * time, for at most `leaseMs` unless extended, with a fencing number that grows with every grant)
 * and coordinates single-use work such as redeeming an authorization code: the first caller
 * claims the key, does the work once and records its outcome; everyone else waits for that
 * outcome. Implementations: MemoryLockStore (one process), RedisLockStore (every process sharing
 * the Redis). Keys given to a lock store are already hashes; it never sees a code.
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
  /** The key this lease holds. */
  readonly key: string;
  /** Fencing number: larger for every later grant of the same key. */
  readonly fence: number;
  /** Extends the lease to `leaseMs` from now. Returns `false` if it was already lost. */
  extend(leaseMs: number): Promise<boolean>;
  /** Releases the lock if this lease still holds it. Idempotent; never throws for a lost lease. */
  release(): Promise<void>;
}

/** How to claim single-use work. */
export interface ClaimOptions {
  /** Lease of the claimer while it works; extend it for long work. */
  leaseMs: number;
  /** How long the claim's traces (the attempt marker and the outcome) are kept. */
  recordTtlMs: number;
}

/**
 * What a claim found:
 * - `claimed`: nobody did the work yet; the caller holds the lease and must `complete` it;
 * - `done`: the work was done; `outcome` is what its doer recorded;
 * - `busy`: someone holds the claim right now: `waitForChange`, then claim again;
 * - `abandoned`: someone claimed it and vanished without an outcome (the lease expired): whether
 *   the work happened is unknown. `settle` records an outcome for everyone.
 */
export type Claim =
  | {
      /** Nobody did the work yet: the caller holds the claim. */
      state: 'claimed';
      /** The claimer's lease: `complete` it with the outcome, `extend` it for long work. */
      lease: Lease;
    }
  | {
      /** The work was done. */
      state: 'done';
      /** What its doer recorded with `complete` (or `settle`). */
      outcome: string;
    }
  | {
      /** Someone holds the claim right now. */
      state: 'busy';
    }
  | {
      /** Someone claimed the work and vanished without an outcome. */
      state: 'abandoned';
    };

/** A store of leases and single-use claims. */
export interface LockStore {
  /**
   * Waits for and takes the lock on `key`.
   *
   * @throws LockTimeoutError when it is not free within `waitTimeoutMs`
   * @throws StoreUnavailableError when the store does not answer
   */
  acquire(key: string, options: LockOptions): Promise<Lease>;
  /** Claims single-use work on `key`, or says who did or is doing it. Never waits. */
  claim(key: string, options: ClaimOptions): Promise<Claim>;
  /**
   * Records the outcome of claimed work, releases the lease and wakes the waiters, atomically.
   * Refused (returns `false`) when an outcome with a higher fence is already recorded: a holder
   * whose lease was lost cannot overwrite a newer outcome.
   */
  complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean>;
  /**
   * Gives back claimed work that provably never started: deletes the claim (its lease and
   * attempt marker) if `lease` still holds it, and wakes the waiters, so that the next `claim`
   * gets `claimed` rather than `abandoned`. Returns `false` when the lease was already lost.
   * Optional: without it, redeem-once records such a failure as `failed` instead.
   */
  withdraw?(lease: Lease): Promise<boolean>;
  /** Records `outcome` for abandoned work unless one exists; returns the outcome now recorded. */
  settle(key: string, outcome: string, recordTtlMs: number): Promise<string>;
  /** Resolves when `key` may have changed (completed, released) or after `timeoutMs`, whichever is first. */
  waitForChange(key: string, timeoutMs: number): Promise<void>;
  /** Releases resources (connections, timers). Leases still held expire on their own. */
  close(): Promise<void>;
  /**
   * Opens the store's connections now rather than on first use, within its deadline. Optional:
   * a store without connections need not have it.
   */
  connect?(): Promise<void>;
}

/**
 * Runs `work` while holding the lock on `key`, releasing it however `work` ends.
 *
 * @param store - the lock store, for example a {@link RedisLockStore} shared by every process
 * @param key - what to lock; any non-empty string (the library's own keys are hashes)
 * @param options - how long the lease lasts and how long to wait for it
 * @param work - what to do while holding the lock; it gets the lease (to `extend` it for long work)
 * @returns what `work` returned
 * @throws LockTimeoutError when the lock is not free within `options.waitTimeoutMs`
 * @throws StoreUnavailableError when the lock store does not answer
 *
 * @example
 * ```ts
 * const locks = new RedisLockStore({ url: 'redis://localhost:6379' });
 * const report = await withLock(locks, 'nightly-report', { leaseMs: 60_000, waitTimeoutMs: 5_000 }, async (lease) => {
 *   // one process at a time gets here; lease.fence grows with every grant of the key
 *   return `built under fence ${lease.fence}`;
 * });
 * ```
 */
export async function withLock<T>(store: LockStore, key: string, options: LockOptions, work: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = await store.acquire(key, options);
  try {
    return await work(lease);
  } finally {
    await lease.release();
  }
}
