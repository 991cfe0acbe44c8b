// The lock-store contract (src/testing/lock-store-contract.ts, exported as lockStoreContract from
// msal-distributed-cache/testing) run against MemoryLockStore (two app instances in one process share
// one store object) and RedisLockStore (two instances = two stores with their own connections, as two
// processes have); then what each keeps in process, which the contract does not cover.
import { randomUUID } from 'node:crypto';
import { MemoryLockStore, RedisLockStore } from '../../src';
import type { ClaimOptions, LockStore } from '../../src';
import { lockStoreContract } from '../../src/testing';
import { expectClaimed, roundTrip } from '../../src/testing/lock-store-contract';

const TTL = 60_000;
const claimOptions: ClaimOptions = { leaseMs: 10_000, recordTtlMs: TTL };

lockStoreContract({ describe, test, beforeEach, afterEach }, () => ({ a: new MemoryLockStore() }), { name: 'MemoryLockStore' });

lockStoreContract(
  { describe, test, beforeEach, afterEach },
  () => {
    const keyPrefix = `lock-${randomUUID()}:`;
    return {
      a: new RedisLockStore({ url: process.env.REDIS_URL!, keyPrefix }),
      b: new RedisLockStore({ url: process.env.REDIS_URL!, keyPrefix }),
    };
  },
  { name: 'RedisLockStore' },
);

describe('bounded in-process state', () => {
  const stores: LockStore[] = [];
  afterEach(async () => {
    jest.useRealTimers();
    for (const store of stores.splice(0)) await store.close();
  });

  it('MemoryLockStore.activeKeys counts only live records, which expire after recordTtlMs', async () => {
    jest.useFakeTimers();
    const store = new MemoryLockStore();
    stores.push(store);
    for (let i = 0; i < 1_000; i++) {
      const lease = expectClaimed(await store.claim(`key-${i}`, claimOptions));
      expect(await store.complete(lease, `outcome-${i}`, TTL)).toBe(true);
    }
    expect(store.activeKeys).toBe(1_000); // the outcomes, nothing else

    for (let i = 0; i < 1_000; i++) await (await store.acquire(`lock-${i}`, { leaseMs: 10_000, waitTimeoutMs: 10_000 })).release();
    expect(store.activeKeys).toBe(1_000); // a released lock leaves nothing behind

    jest.advanceTimersByTime(TTL + 1);
    expect(store.activeKeys).toBe(0);
    expect(await store.claim('key-0', claimOptions)).toMatchObject({ state: 'claimed' }); // the record is really gone
  });

  it('RedisLockStore.waitingKeys is 0 once no waiter remains', async () => {
    const keyPrefix = `lock-${randomUUID()}:`;
    const a = new RedisLockStore({ url: process.env.REDIS_URL!, keyPrefix });
    const b = new RedisLockStore({ url: process.env.REDIS_URL!, keyPrefix });
    stores.push(a, b);
    const keys = Array.from({ length: 1_000 }, (_, i) => `key-${i}`);

    // 1 000 waiters on b, each ended by a's completion or its own (short) timeout.
    const waits = keys.map((key) => b.waitForChange(key, 2_000));
    expect(b.waitingKeys).toBe(1_000);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(
        keys.slice(i, i + 100).map(async (key) => {
          const lease = expectClaimed(await a.claim(key, claimOptions));
          expect(await a.complete(lease, 'outcome', TTL)).toBe(true);
        }),
      );
    }
    await Promise.all(waits);
    expect(b.waitingKeys).toBe(0);
    expect(a.waitingKeys).toBe(0);

    // Waiters inside acquire are gone once it got the lock.
    const held = await a.acquire('contended', { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    const pending = b.acquire('contended', { leaseMs: 10_000, waitTimeoutMs: 30_000 });
    await roundTrip(b);
    await held.release();
    await (await pending).release();
    expect(b.waitingKeys).toBe(0);

    // close() wakes the remaining waiters.
    const waiting = b.waitForChange('idle', 30_000);
    expect(b.waitingKeys).toBe(1);
    await b.close();
    await waiting;
    expect(b.waitingKeys).toBe(0);
  });
});
