/**
 * MemoryLockStore: leases and single-use claims inside one process, on async-mutex. The default,
 * and enough for a single instance; use RedisLockStore as soon as several processes share a
 * token store. Lock state is dropped as soon as nobody holds or waits for a key; claim records
 * expire after their `recordTtlMs`.
 */
import { EventEmitter } from 'node:events';
import { E_TIMEOUT, Mutex, withTimeout } from 'async-mutex';
import { ClosedError, LockTimeoutError } from '../errors';
import { shortHash } from '../internal/hash';
import { requireNonEmptyString, requirePositiveInteger } from '../internal/validate';
import type { Claim, ClaimOptions, Lease, LockOptions, LockStore } from './lock-store';

interface KeyState {
  mutex: Mutex;
  /** Holders and waiters; the entry is deleted when this drops to zero. */
  users: number;
}

interface ClaimRecord {
  /** Set while the claimer's lease lasts; a record with neither holder nor outcome was abandoned. */
  holder?: { fence: number };
  outcome?: { fence: number; value: string };
  expiry: NodeJS.Timeout;
}

/**
 * In-process lock store.
 *
 * @example
 * ```ts
 * const locks = new MemoryLockStore();
 * const lease = await locks.acquire('k', { leaseMs: 30_000, waitTimeoutMs: 5_000 });
 * try {
 *   // ... work while holding the lock
 * } finally {
 *   await lease.release();
 * }
 * ```
 */
export class MemoryLockStore implements LockStore {
  readonly #keys = new Map<string, KeyState>();
  readonly #claims = new Map<string, ClaimRecord>();
  readonly #changes = new EventEmitter().setMaxListeners(0);
  /** One counter for all keys: strictly increasing per key, even after a key's state was dropped. */
  #fence = 0;
  #closed = false;

  /** Keys with a lock holder or waiter, plus live claim records (for tests and stats). */
  get activeKeys(): number {
    return this.#keys.size + this.#claims.size;
  }

  async acquire(key: string, options: LockOptions): Promise<Lease> {
    this.#assertOpen();
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const waitTimeoutMs = requirePositiveInteger(options.waitTimeoutMs, 'options.waitTimeoutMs');
    let state = this.#keys.get(key);
    if (!state) {
      state = { mutex: new Mutex(), users: 0 };
      this.#keys.set(key, state);
    }
    state.users++;
    let releaseMutex: () => void;
    try {
      releaseMutex = await withTimeout(state.mutex, waitTimeoutMs).acquire();
    } catch (error) {
      this.#leave(key, state);
      if (error === E_TIMEOUT)
        throw new LockTimeoutError(
          `lock ${shortHash(key)} (hash) was not free within ${waitTimeoutMs} ms; retry later or raise the wait timeout`,
        );
      throw error;
    }
    const fence = ++this.#fence;
    return this.#lease(key, fence, leaseMs, () => {
      releaseMutex();
      this.#leave(key, state);
      this.#changes.emit(key);
    });
  }

  async claim(key: string, options: ClaimOptions): Promise<Claim> {
    this.#assertOpen();
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const recordTtlMs = requirePositiveInteger(options.recordTtlMs, 'options.recordTtlMs');
    const existing = this.#claims.get(key);
    if (existing?.outcome) return { state: 'done', outcome: existing.outcome.value };
    if (existing?.holder) return { state: 'busy' };
    if (existing) return { state: 'abandoned' };
    const fence = ++this.#fence;
    const record: ClaimRecord = { expiry: this.#expireRecord(key, recordTtlMs) };
    this.#claims.set(key, record);
    const lease = this.#lease(key, fence, leaseMs, () => {
      if (record.holder?.fence === fence) delete record.holder;
      this.#changes.emit(key);
    });
    record.holder = { fence };
    return { state: 'claimed', lease };
  }

  async complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean> {
    this.#assertOpen();
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    let record = this.#claims.get(lease.key);
    if (record?.outcome && record.outcome.fence >= lease.fence) return false;
    if (!record) {
      record = { expiry: this.#expireRecord(lease.key, recordTtlMs) };
      this.#claims.set(lease.key, record);
    } else {
      clearTimeout(record.expiry);
      record.expiry = this.#expireRecord(lease.key, recordTtlMs);
    }
    record.outcome = { fence: lease.fence, value: outcome };
    await lease.release(); // wakes the waiters
    return true;
  }

  async withdraw(lease: Lease): Promise<boolean> {
    this.#assertOpen();
    const record = this.#claims.get(lease.key);
    if (record?.outcome || record?.holder?.fence !== lease.fence) return false;
    clearTimeout(record.expiry);
    this.#claims.delete(lease.key);
    await lease.release(); // wakes the waiters
    return true;
  }

  async settle(key: string, outcome: string, recordTtlMs: number): Promise<string> {
    this.#assertOpen();
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const record = this.#claims.get(key);
    if (record?.outcome) return record.outcome.value;
    const settled: ClaimRecord = { outcome: { fence: ++this.#fence, value: outcome }, expiry: this.#expireRecord(key, recordTtlMs) };
    if (record) clearTimeout(record.expiry);
    this.#claims.set(key, settled);
    this.#changes.emit(key);
    return outcome;
  }

  async waitForChange(key: string, timeoutMs: number): Promise<void> {
    this.#assertOpen();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#changes.off(key, done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs).unref();
      this.#changes.on(key, done);
    });
  }

  /** Refuses further calls and wakes pending waits. Held leases still end on release or expiry. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const key of this.#changes.eventNames()) this.#changes.emit(key);
  }

  /** A lease that ends on release or after `leaseMs` (a holder that never releases loses the key, as with Redis). */
  #lease(key: string, fence: number, leaseMs: number, onEnd: () => void): Lease {
    let held = true;
    const end = (): void => {
      if (!held) return;
      held = false;
      clearTimeout(expiry);
      onEnd();
    };
    let expiry = setTimeout(end, leaseMs).unref();
    return {
      key,
      fence,
      extend: async (nextLeaseMs: number) => {
        requirePositiveInteger(nextLeaseMs, 'leaseMs');
        if (!held) return false;
        clearTimeout(expiry);
        expiry = setTimeout(end, nextLeaseMs).unref();
        return true;
      },
      release: async () => end(),
    };
  }

  #expireRecord(key: string, ttlMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const record = this.#claims.get(key);
      if (record?.expiry !== timer) return;
      // A record never expires under a holder that still works on it (recordTtlMs < leaseMs).
      if (record.holder) record.expiry = this.#expireRecord(key, ttlMs);
      else this.#claims.delete(key);
    }, ttlMs).unref();
    return timer;
  }

  #leave(key: string, state: KeyState): void {
    if (--state.users === 0 && this.#keys.get(key) === state) this.#keys.delete(key);
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('this MemoryLockStore is closed; create a new one');
  }
}
