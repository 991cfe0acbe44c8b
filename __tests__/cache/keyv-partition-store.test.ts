// KeyvPartitionStore (stores without atomic operations) when a write misses its deadline: the
// partition lock is kept, renewed, until the store has applied the write, within a bound.
// Only time matters here, so the clock is Jest's fake one.
import Keyv from 'keyv';
import { LockTimeoutError, MemoryLockStore, StoreUnavailableError } from '../../src';
import { KeyvPartitionStore, LATE_WRITE_HOLD_FACTOR } from '../../src/cache/keyv-partition-store';
import { rejectionOf } from '../helpers/assertions';
import { SlowSetStore } from '../helpers/slow-set-store';

const storeTimeoutMs = 100;
const leaseMs = storeTimeoutMs * 3; // what KeyvPartitionStore asks for
const storageKey = 'msal-dc:cache:{partition}';
const record = (version: string) => ({ version, partition: 'partition', cache: '{}' });

let locks: MemoryLockStore;
let slow: SlowSetStore;
let store: KeyvPartitionStore;

beforeEach(() => {
  jest.useFakeTimers();
  locks = new MemoryLockStore();
  slow = new SlowSetStore();
  store = new KeyvPartitionStore(new Keyv({ store: slow }), locks, { storeTimeoutMs, lockWaitTimeoutMs: 60_000 });
});

afterEach(async () => {
  await locks.close();
  jest.useRealTimers();
});

/** Whether another writer could take the partition lock now (it tries for 1 ms of fake time). */
async function lockIsFree(): Promise<boolean> {
  const attempt = locks.acquire(`lock:${storageKey}`, { leaseMs: 1_000, waitTimeoutMs: 1 }).then(
    async (lease) => {
      await lease.release();
      return true;
    },
    (error: unknown) => {
      if (error instanceof LockTimeoutError) return false;
      throw error;
    },
  );
  await jest.advanceTimersByTimeAsync(1);
  return attempt;
}

/** Starts a compare-and-set whose `set` the store holds, and lets it miss its deadline. */
async function lateWrite(): Promise<() => void> {
  const arrived = slow.holdNextSet();
  const write = rejectionOf(store.compareAndSet(storageKey, '', record('v1'), 60_000));
  const land = await arrived;
  await jest.advanceTimersByTimeAsync(storeTimeoutMs);
  expect(await write).toBeInstanceOf(StoreUnavailableError);
  return land;
}

describe('Edge 10: a write that missed its deadline', () => {
  it('keeps the partition lock past its lease while the set is pending, and frees it once the set lands', async () => {
    const land = await lateWrite();

    await jest.advanceTimersByTimeAsync(leaseMs * 2); // the lease alone would have expired by now
    expect(await lockIsFree()).toBe(false);

    land();
    await jest.advanceTimersByTimeAsync(0);
    expect(await lockIsFree()).toBe(true);
    expect(await store.read(storageKey)).toMatchObject({ kind: 'found', record: { version: 'v1' } });
  });

  it(`frees the lock after ${LATE_WRITE_HOLD_FACTOR} deadlines even if the set never lands (a hung store does not lock a partition for good)`, async () => {
    await lateWrite(); // never landed

    await jest.advanceTimersByTimeAsync(storeTimeoutMs * (LATE_WRITE_HOLD_FACTOR - 2));
    expect(await lockIsFree()).toBe(false);
    await jest.advanceTimersByTimeAsync(storeTimeoutMs * 2);
    expect(await lockIsFree()).toBe(true);
  });

  it('a write that settled within its deadline releases the lock before compareAndSet returns', async () => {
    expect(await store.compareAndSet(storageKey, '', record('v1'), 60_000)).toEqual({ ok: true });
    expect(locks.activeKeys).toBe(0);
  });
});
