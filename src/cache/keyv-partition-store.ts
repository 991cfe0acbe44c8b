/**
 * Partition records in any Keyv store. Keyv has no atomic compare-and-set, so a write takes the
 * partition's lock from the lock store, re-reads, compares and writes. Across processes that is
 * only safe with a lock store they share (RedisLockStore); MemoryLockStore protects one process.
 */
import type Keyv from 'keyv';
import { StoreUnavailableError } from '../errors';
import { withDeadline } from '../internal/deadline';
import { withLock } from '../lock/lock-store';
import type { LockStore } from '../lock/lock-store';
import { RECORD_FORMAT, toReadResult, versionOf } from './partition-store';
import type { CompareAndSetResult, PartitionRecord, PartitionStore, ReadResult } from './partition-store';

export interface KeyvPartitionStoreOptions {
  storeTimeoutMs: number;
  lockWaitTimeoutMs: number;
}

export class KeyvPartitionStore implements PartitionStore {
  constructor(
    private readonly keyv: Keyv,
    private readonly locks: LockStore,
    private readonly options: KeyvPartitionStoreOptions,
  ) {
    // Keyv swallows store errors by default (a failed read looks like a miss): make them visible.
    keyv.throwOnErrors = true;
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
    const lease = { leaseMs: this.options.storeTimeoutMs * 3, waitTimeoutMs: this.options.lockWaitTimeoutMs };
    return withLock(this.locks, `lock:${storageKey}`, lease, async () => {
      const current = await this.read(storageKey);
      if (versionOf(current) !== expectedVersion) return { ok: false, current };
      if (next === null) {
        await withDeadline(this.keyv.delete(storageKey), this.options.storeTimeoutMs, 'Keyv delete');
      } else {
        const written = await withDeadline(
          this.keyv.set(storageKey, { format: RECORD_FORMAT, ...next }, ttlMs),
          this.options.storeTimeoutMs,
          'Keyv set',
        );
        if (written === false)
          throw new StoreUnavailableError('Keyv set reported a failed write; check the store (see docs/failure-modes.md)');
      }
      return { ok: true };
    });
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
