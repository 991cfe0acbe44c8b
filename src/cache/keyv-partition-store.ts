/**
 * Partition records in any Keyv store. Keyv has no atomic compare-and-set, so a write takes the
 * partition's lock from the lock store, re-reads, compares and writes. Across processes that is
 * only safe with a lock store they share (RedisLockStore); MemoryLockStore protects one process.
 */
import type Keyv from 'keyv';
import { StoreUnavailableError } from '../errors';
import { withDeadline } from '../internal/deadline';
import type { Lease, LockStore } from '../lock/lock-store';
import { RECORD_FORMAT, toReadResult, versionOf } from './partition-store';
import type { CompareAndSetResult, PartitionRecord, PartitionStore, ReadResult } from './partition-store';
import { partitionLockKey } from '../storage-keys';

export interface KeyvPartitionStoreOptions {
  storeTimeoutMs: number;
  lockWaitTimeoutMs: number;
}

/**
 * A write that missed its deadline keeps the partition lock until it settles, but not forever: a
 * store that never answers must not lock a partition for good. After this many `storeTimeoutMs`
 * the lock is released, and a write that lands even later can overwrite newer data.
 */
export const LATE_WRITE_HOLD_FACTOR = 10;

export class KeyvPartitionStore implements PartitionStore {
  /** Long enough for one read and one write within their deadlines; renewed while a late write is pending. */
  private readonly leaseMs: number;

  constructor(
    private readonly keyv: Keyv,
    private readonly locks: LockStore,
    private readonly options: KeyvPartitionStoreOptions,
  ) {
    // Keyv swallows store errors by default (a failed read looks like a miss): make them visible.
    keyv.throwOnErrors = true;
    this.leaseMs = options.storeTimeoutMs * 3;
  }

  async read(storageKey: string): Promise<ReadResult> {
    return toReadResult(await withDeadline(this.keyv.get(storageKey), this.options.storeTimeoutMs, 'Keyv get'));
  }

  async compareAndSet(
    storageKey: string,
    expectedVersion: string,
    next: PartitionRecord | null,
    ttlMs: number,
  ): Promise<CompareAndSetResult> {
    const lease = await this.locks.acquire(partitionLockKey(storageKey), {
      leaseMs: this.leaseMs,
      waitTimeoutMs: this.options.lockWaitTimeoutMs,
    });
    let lateWrite: Promise<unknown> | undefined;
    try {
      const current = await this.read(storageKey);
      if (versionOf(current) !== expectedVersion) return { ok: false, current };
      const write = next === null ? this.keyv.delete(storageKey) : this.keyv.set(storageKey, { format: RECORD_FORMAT, ...next }, ttlMs);
      let pending = true;
      const settle = (): void => void (pending = false);
      write.then(settle, settle); // attached before the deadline's race, so it runs first
      try {
        const written = await withDeadline(write, this.options.storeTimeoutMs, next === null ? 'Keyv delete' : 'Keyv set');
        if (written === false)
          throw new StoreUnavailableError('Keyv set reported a failed write; check the store (see docs/failure-modes.md)');
      } catch (error) {
        if (pending) lateWrite = write;
        throw error;
      }
      return { ok: true };
    } finally {
      // The deadline ends our wait, not the write: until the store has applied or dropped it, a
      // newer write (of any instance) must not start, or this one could land over it.
      if (lateWrite) void this.releaseWhenSettled(lease, lateWrite);
      else await lease.release();
    }
  }

  /** Releases `lease` once `write` settled, renewing it meanwhile, for at most LATE_WRITE_HOLD_FACTOR deadlines. */
  private async releaseWhenSettled(lease: Lease, write: Promise<unknown>): Promise<void> {
    const settled = write.then(
      () => true,
      () => true,
    );
    const giveUpAt = Date.now() + this.options.storeTimeoutMs * LATE_WRITE_HOLD_FACTOR;
    try {
      for (let left = giveUpAt - Date.now(); left > 0; left = giveUpAt - Date.now()) {
        if (await Promise.race([settled, delay(Math.min(left, this.leaseMs / 3))])) return;
        if (!(await lease.extend(this.leaseMs))) return; // already lost: nothing left to hold
      }
    } catch {
      // The lock store failed while we renewed: the lease ends on its own.
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  async getValue(key: string): Promise<string | undefined> {
    const value: unknown = await withDeadline(this.keyv.get(key), this.options.storeTimeoutMs, 'Keyv get');
    return typeof value === 'string' ? value : undefined;
  }

  async setValue(key: string, value: string, ttlMs: number): Promise<void> {
    const written = await withDeadline(this.keyv.set(key, value, ttlMs), this.options.storeTimeoutMs, 'Keyv set');
    if (written === false) throw new StoreUnavailableError('Keyv set reported a failed write; check the store (see docs/failure-modes.md)');
  }

  async close(): Promise<void> {
    await withDeadline(this.keyv.disconnect(), this.options.storeTimeoutMs, 'Keyv disconnect');
  }
}

/** Resolves `false` after `ms`; unref'd, so a write that never settles does not keep the process alive. */
function delay(ms: number): Promise<false> {
  return new Promise((resolve) => setTimeout(() => resolve(false), ms).unref());
}
