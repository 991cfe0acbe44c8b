/**
 * MemoryLockStore: leases inside one process, on async-mutex. Enough for a single instance and
 * the default of the library; use RedisLockStore as soon as several processes share a store.
 * Per-key state is dropped as soon as nobody holds or waits for the key.
 */
import { E_TIMEOUT, Mutex, withTimeout } from 'async-mutex';
import { ClosedError, LockTimeoutError } from '../errors';
import { shortHash } from '../internal/hash';
import { requirePositiveInteger } from '../internal/validate';
import type { Lease, LockOptions, LockStore } from './lock-store';

interface KeyState {
  mutex: Mutex;
  /** Holders and waiters; the entry is deleted when this drops to zero. */
  users: number;
}

/**
 * In-process lock store.
 *
 * @example
 * ```ts
 * const locks = new MemoryLockStore();
 * const lease = await locks.acquire('k', { leaseMs: 30_000, waitTimeoutMs: 5_000 });
 * try { ... } finally { await lease.release(); }
 * ```
 */
export class MemoryLockStore implements LockStore {
  private readonly keys = new Map<string, KeyState>();
  /** One counter for all keys: strictly increasing per key, even after a key's state was dropped. */
  private fence = 0;
  private closed = false;

  /** Number of keys with a holder or a waiter (for tests and stats). */
  get activeKeys(): number {
    return this.keys.size;
  }

  async acquire(key: string, options: LockOptions): Promise<Lease> {
    if (this.closed) throw new ClosedError('MemoryLockStore is closed; create a new one');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const waitTimeoutMs = requirePositiveInteger(options.waitTimeoutMs, 'options.waitTimeoutMs');
    let state = this.keys.get(key);
    if (!state) {
      state = { mutex: new Mutex(), users: 0 };
      this.keys.set(key, state);
    }
    state.users++;
    let releaseMutex: () => void;
    try {
      releaseMutex = await withTimeout(state.mutex, waitTimeoutMs).acquire();
    } catch (error) {
      this.leave(key, state);
      if (error === E_TIMEOUT)
        throw new LockTimeoutError(
          `lock ${shortHash(key)} (hash) was not free within ${waitTimeoutMs} ms; retry later or raise the wait timeout`,
        );
      throw error;
    }
    return this.grant(key, state, releaseMutex, leaseMs);
  }

  private grant(key: string, state: KeyState, releaseMutex: () => void, leaseMs: number): Lease {
    let held = true;
    const end = (): void => {
      if (!held) return;
      held = false;
      clearTimeout(expiry);
      releaseMutex();
      this.leave(key, state);
    };
    // A holder that never releases loses the key after its lease, as with Redis.
    let expiry = setTimeout(end, leaseMs).unref();
    return {
      key,
      fence: ++this.fence,
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

  private leave(key: string, state: KeyState): void {
    if (--state.users === 0 && this.keys.get(key) === state) this.keys.delete(key);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
