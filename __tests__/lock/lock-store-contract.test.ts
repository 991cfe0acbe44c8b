// One contract for lock stores (leases, fencing, single-use claims, change notification), run
// against MemoryLockStore (two app instances in one process share one store object) and
// RedisLockStore (two instances = two stores with their own connections, as two processes have).
import { randomUUID } from 'node:crypto';
import { ClosedError, LockTimeoutError, MemoryLockStore, RedisLockStore } from '../../src';
import type { Claim, ClaimOptions, Lease, LockStore } from '../../src';
import { rejectionOf } from '../helpers/assertions';

/** Two instances of an app: `a` and `b`, sharing locks as the implementation allows. */
interface Instances {
  a: LockStore;
  b: LockStore;
}

const implementations: [string, () => Instances][] = [
  [
    'MemoryLockStore',
    () => {
      const store = new MemoryLockStore(); // per process: both instances use the same object
      return { a: store, b: store };
    },
  ],
  [
    'RedisLockStore',
    () => {
      const keyPrefix = `lock-${randomUUID()}:`;
      return {
        a: new RedisLockStore({ url: process.env.REDIS_URL!, keyPrefix }),
        b: new RedisLockStore({ url: process.env.REDIS_URL!, keyPrefix }),
      };
    },
  ],
];

const TTL = 60_000;
const claimOptions: ClaimOptions = { leaseMs: 10_000, recordTtlMs: TTL };

function expectClaimed(claim: Claim): Lease {
  if (claim.state !== 'claimed') throw new Error(`expected 'claimed', got ${JSON.stringify(claim)}`);
  return claim.lease;
}

/** Claims again while the claim is busy, waiting for a change in between (the documented usage). */
async function claimUntilNotBusy(store: LockStore, key: string, options: ClaimOptions = claimOptions): Promise<Claim> {
  for (;;) {
    const claim = await store.claim(key, options);
    if (claim.state !== 'busy') return claim;
    await store.waitForChange(key, 50);
  }
}

/**
 * One answered call on `store`: with Redis, on the same connection and so after any command the
 * store sent before it (such as an acquire attempt), without any timer.
 */
async function roundTrip(store: LockStore): Promise<void> {
  await store.claim(`probe-${randomUUID()}`, { leaseMs: 1_000, recordTtlMs: 1_000 });
}

describe.each(implementations)('lock store contract on %s', (_name, createInstances) => {
  let a: LockStore;
  let b: LockStore;
  let key: string;

  beforeEach(() => {
    ({ a, b } = createInstances());
    key = `key-${randomUUID()}`;
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it('acquire gives exclusive access: the other instance waits and gets the lock right after release, with a higher fence', async () => {
    const first = await a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    let secondGranted = false;
    const second = b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 30_000 }).then((lease) => {
      secondGranted = true;
      return lease;
    });
    await roundTrip(b); // b's first attempt has been answered: the key was taken
    expect(secondGranted).toBe(false);

    await first.release();
    const secondLease = await second;
    expect(secondLease.key).toBe(key);
    expect(secondLease.fence).toBeGreaterThan(first.fence);

    await secondLease.release();
    const third = await a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    expect(third.fence).toBeGreaterThan(secondLease.fence);
    await third.release();
  });

  it('acquire gives up with LockTimeoutError, naming the key by hash only, while another holder keeps the key', async () => {
    const held = await a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    const error = await rejectionOf(b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 }));
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.code).toBe('ERR_LOCK_TIMEOUT');
    expect(error.message).not.toContain(key);
    expect(error.message).not.toContain(key.slice('key-'.length));
    await held.release();
  });

  it('a holder that never releases loses the key after its lease; its extend() then fails and its release() does not free the new holder', async () => {
    const old = await a.acquire(key, { leaseMs: 200, waitTimeoutMs: 10_000 }); // never released
    const newer = await b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 5_000 });
    expect(newer.fence).toBeGreaterThan(old.fence);

    expect(await old.extend(10_000)).toBe(false);
    await expect(old.release()).resolves.toBeUndefined();
    await expect(a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);

    expect(await newer.extend(10_000)).toBe(true); // still the holder
    await newer.release();
  });

  it('extend keeps the lock beyond its original lease', async () => {
    const lease = await a.acquire(key, { leaseMs: 200, waitTimeoutMs: 10_000 });
    expect(await lease.extend(10_000)).toBe(true);
    await expect(b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 400 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(await lease.extend(10_000)).toBe(true);
    await lease.release();
  });

  it('release is idempotent and a repeated release never frees a later holder', async () => {
    const first = await a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    await first.release();
    await expect(first.release()).resolves.toBeUndefined();
    expect(await first.extend(10_000)).toBe(false);

    const second = await b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    await first.release();
    await expect(a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
    await second.release();
    await second.release();
    const third = await a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    await third.release();
  });

  it('claim: the first claim is claimed, others are busy while it is held, and done with its outcome once completed', async () => {
    const lease = expectClaimed(await a.claim(key, claimOptions));
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'busy' });
    expect(await a.claim(key, claimOptions)).toEqual({ state: 'busy' });

    expect(await a.complete(lease, 'outcome-1', TTL)).toBe(true);
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
    expect(await a.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
    expect(await lease.extend(10_000)).toBe(false); // complete released the lease
  });

  it('claim: of concurrent claims from both instances exactly one is claimed, the other busy', async () => {
    const claims = await Promise.all([a.claim(key, claimOptions), b.claim(key, claimOptions)]);
    expect(claims.map((claim) => claim.state).sort()).toEqual(['busy', 'claimed']);
    const winner = claims.findIndex((claim) => claim.state === 'claimed');
    const lease = expectClaimed(claims[winner]!);
    expect(await [a, b][winner]!.complete(lease, 'outcome-1', TTL)).toBe(true);
    expect(await [b, a][winner]!.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
  });

  it('claim after the claimer lease expired without an outcome is abandoned; settle records an outcome for everyone and never replaces one', async () => {
    expectClaimed(await a.claim(key, { leaseMs: 200, recordTtlMs: TTL })); // never completed
    expect(await claimUntilNotBusy(b, key)).toEqual({ state: 'abandoned' });
    expect(await a.claim(key, claimOptions)).toEqual({ state: 'abandoned' });

    expect(await b.settle(key, 'unknown', TTL)).toBe('unknown');
    expect(await a.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'unknown' });
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'unknown' });

    expect(await a.settle(key, 'other', TTL)).toBe('unknown');
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'unknown' });
  });

  it('withdraw gives a claim back: a waiter on the other instance wakes and claims the work afresh, with a higher fence', async () => {
    const lease = expectClaimed(await a.claim(key, claimOptions));
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'busy' });
    const waiting = b.waitForChange(key, 30_000);
    expect(await a.withdraw!(lease)).toBe(true);
    await waiting; // a missed wake-up would wait the full 30 s and hit this test's timeout
    const next = expectClaimed(await b.claim(key, claimOptions)); // not 'abandoned'
    expect(next.fence).toBeGreaterThan(lease.fence);
    expect(await lease.extend(10_000)).toBe(false);
    expect(await a.withdraw!(lease)).toBe(false); // it no longer holds the claim: the new claimer keeps it
    expect(await a.claim(key, claimOptions)).toEqual({ state: 'busy' });
  }, 10_000);

  it('withdraw by a claimer whose lease expired changes nothing: the claim stays abandoned', async () => {
    const stale = expectClaimed(await a.claim(key, { leaseMs: 200, recordTtlMs: TTL }));
    expect(await claimUntilNotBusy(b, key)).toEqual({ state: 'abandoned' });
    expect(await a.withdraw!(stale)).toBe(false);
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'abandoned' });
  });

  it('settle on completed work returns the recorded outcome and does not replace it', async () => {
    const lease = expectClaimed(await a.claim(key, claimOptions));
    expect(await a.complete(lease, 'outcome-1', TTL)).toBe(true);
    expect(await b.settle(key, 'unknown', TTL)).toBe('outcome-1');
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
  });

  it('fencing: a claimer whose lease expired cannot overwrite the outcome settled by someone else', async () => {
    const stale = expectClaimed(await a.claim(key, { leaseMs: 200, recordTtlMs: TTL }));
    expect(await claimUntilNotBusy(b, key)).toEqual({ state: 'abandoned' });
    expect(await b.settle(key, 'unknown', TTL)).toBe('unknown');

    expect(await a.complete(stale, 'late-outcome', TTL)).toBe(false);
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'unknown' });
    expect(await a.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'unknown' });
  });

  it('waitForChange wakes a waiter on the other instance when the work is completed', async () => {
    const lease = expectClaimed(await a.claim(key, claimOptions));
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'busy' });
    const waiting = b.waitForChange(key, 30_000);
    expect(await a.complete(lease, 'outcome-1', TTL)).toBe(true);
    await waiting; // a missed wake-up would wait the full 30 s and hit this test's timeout
    expect(await b.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
  }, 10_000);

  it('waitForChange resolves after its timeout when nothing happens', async () => {
    await expect(b.waitForChange(key, 50)).resolves.toBeUndefined();
  });

  it('after close(), acquire, claim, complete and settle reject with ClosedError; release does not throw', async () => {
    const lease = expectClaimed(await a.claim(key, claimOptions));
    const held = await a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 10_000 });
    await a.close();
    await a.close(); // idempotent

    const calls: [string, () => Promise<unknown>][] = [
      ['acquire', () => a.acquire(`${key}-2`, { leaseMs: 10_000, waitTimeoutMs: 10_000 })],
      ['claim', () => a.claim(`${key}-2`, claimOptions)],
      ['complete', () => a.complete(lease, 'outcome-1', TTL)],
      ['settle', () => a.settle(key, 'unknown', TTL)],
    ];
    for (const [name, call] of calls) {
      const error = await rejectionOf(call());
      expect([name, error]).toEqual([name, expect.any(ClosedError)]);
      expect(error.code).toBe('ERR_CLOSED');
    }
    await expect(held.release()).resolves.toBeUndefined();
  });
});

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
