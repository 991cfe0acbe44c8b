// The lock-store contract as a test suite anyone can run against their own LockStore: leases,
// fencing, single-use claims, withdrawal, change notification and close(), each checked between two
// app instances. It registers its tests through the test functions the caller passes in (jest's,
// vitest's, or node:test's), and asserts with node:assert: the package needs no test runner at run
// time and its types need no @types/jest. A little over 300 lines: the contract's tests stay one list
// in one file, to read (and extend) as the specification of a LockStore.
//
// A store throws the main entry's LockTimeoutError and ClosedError, which redeem-once checks with
// instanceof; so does this contract. The testing entry point is bundled on its own (dist/testing.*),
// so the build turns the import of '../errors' into one of 'msal-distributed-cache' (see
// tsup.config.ts) rather than bundle copies of the classes. The types come by the package's name,
// so that dist/testing.d.ts imports them from the main entry's declarations too.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Claim, ClaimOptions, Lease, LockStore } from 'msal-distributed-cache';
import { ClosedError, LockTimeoutError } from '../errors';

/**
 * The test functions {@link lockStoreContract} registers its tests with: jest's and vitest's globals
 * fit as they are. A test's `timeoutMs`, when given, must fail it after that long (a missed wake-up
 * would otherwise only cost a 30 s wait); with `node:test`, pass
 * `test: (name, body, timeoutMs) => test(name, { timeout: timeoutMs ?? Infinity }, body)`.
 */
export interface LockStoreContractFunctions {
  /** Groups the tests (jest's or vitest's `describe`). */
  describe(name: string, body: () => void): unknown;
  /** Registers one test (jest's `test` or `it`). */
  test(name: string, body: () => Promise<void>, timeoutMs?: number): unknown;
  /** Runs before each test (jest's `beforeEach`). */
  beforeEach(hook: () => Promise<void>): unknown;
  /** Runs after each test, also a failed one (jest's `afterEach`). */
  afterEach(hook: () => Promise<void>): unknown;
}

/**
 * Two instances of an app sharing their locks as the store allows, made fresh for each test: `a`
 * and `b`. A store shared by one process (such as `MemoryLockStore`) is one object: give only `a`,
 * and `b` is the same store. A store shared over the network (such as `RedisLockStore`) gives two
 * stores with their own connections and the same namespace (`keyPrefix`), as two processes have.
 */
export interface LockStoreInstances {
  /** The first instance's store. */
  a: LockStore;
  /** The second instance's store. @defaultValue `a` */
  b?: LockStore;
}

/** Options for {@link lockStoreContract}. */
export interface LockStoreContractOptions {
  /** Names the store in the suite's title: `lock store contract on <name>`. @defaultValue `'LockStore'` */
  name?: string;
  /**
   * Whether the store implements the optional `withdraw`: `false` leaves out the two tests of it (a
   * store without it fails them, saying so). @defaultValue true
   */
  withdraw?: boolean;
}

const TTL = 60_000;
const claimOptions: ClaimOptions = { leaseMs: 10_000, recordTtlMs: TTL };
const lockOptions = { leaseMs: 10_000, waitTimeoutMs: 10_000 };

/** The lease of a claim that must be `claimed`. */
export function expectClaimed(claim: Claim): Lease {
  if (claim.state !== 'claimed') throw new assert.AssertionError({ message: `expected 'claimed', got ${JSON.stringify(claim)}` });
  return claim.lease;
}

/** Claims again while the claim is busy, waiting for a change in between (the documented usage). */
export async function claimUntilNotBusy(store: LockStore, key: string): Promise<Claim> {
  for (;;) {
    const claim = await store.claim(key, claimOptions);
    if (claim.state !== 'busy') return claim;
    await store.waitForChange(key, 50);
  }
}

/**
 * One answered call on `store`: with Redis, on the same connection and so after any command the
 * store sent before it (such as an acquire attempt), without any timer.
 */
export async function roundTrip(store: LockStore): Promise<void> {
  await store.claim(`probe-${randomUUID()}`, { leaseMs: 1_000, recordTtlMs: 1_000 });
}

function withdraw(store: LockStore, lease: Lease): Promise<boolean> {
  if (!store.withdraw)
    throw new assert.AssertionError({ message: 'the store has no withdraw(): pass { withdraw: false } to lockStoreContract' });
  return store.withdraw(lease);
}

/** Asserts that `first` was granted before `second`: fences grow with every grant of a key. */
function assertFenceGrew(first: Lease, second: Lease): void {
  assert.ok(second.fence > first.fence, `fence ${second.fence} of a later grant is not above ${first.fence}`);
}

/**
 * Registers the lock-store contract, the tests this library's own `MemoryLockStore` and
 * `RedisLockStore` pass, for your {@link LockStore}: two app instances (`createInstances`, called
 * before each test) contend for leases and single-use claims, and the suite checks exclusive leases
 * with growing fences, lease expiry and extension, idempotent release, one claimer per key with its
 * outcome for everyone, abandoned claims and `settle`, `withdraw`, fencing of a stale claimer,
 * wake-ups by `waitForChange`, `LockTimeoutError` and `ClosedError`. Leases expire for real (200 ms
 * leases): no fake clock is needed. It closes both stores after each test.
 *
 * @param functions - the test runner's `describe`, `test`, `beforeEach` and `afterEach`
 * @param createInstances - makes the two instances' stores, fresh (an empty namespace) for each test
 * @param options - the store's name in the titles; whether it implements `withdraw`
 *
 * @example
 * ```ts
 * // lock-store.test.ts, with jest's globals (vitest: import them from 'vitest')
 * import { MemoryLockStore } from 'msal-distributed-cache';
 * import { lockStoreContract } from 'msal-distributed-cache/testing';
 *
 * lockStoreContract({ describe, test, beforeEach, afterEach }, () => ({ a: new MemoryLockStore() }), { name: 'MemoryLockStore' });
 * ```
 */
export function lockStoreContract(
  functions: LockStoreContractFunctions,
  createInstances: () => LockStoreInstances | Promise<LockStoreInstances>,
  options: LockStoreContractOptions = {},
): void {
  const { describe, test, beforeEach, afterEach } = functions;
  describe(`lock store contract on ${options.name ?? 'LockStore'}`, () => {
    let a: LockStore;
    let b: LockStore;
    let key: string;
    // Stores unref their timers (a lease expiry or a wait must not keep an app alive), so a test
    // awaiting only such a timer would leave the event loop empty: node:test then cancels it.
    let keepAlive: ReturnType<typeof setInterval> | undefined;

    beforeEach(async () => {
      keepAlive = setInterval(() => undefined, 60_000);
      const instances = await createInstances();
      a = instances.a;
      b = instances.b ?? instances.a;
      key = `key-${randomUUID()}`;
    });
    afterEach(async () => {
      try {
        await a.close();
        await b.close();
      } finally {
        clearInterval(keepAlive);
      }
    });

    test('acquire gives exclusive access: the other instance waits and gets the lock right after release, with a higher fence', async () => {
      const first = await a.acquire(key, lockOptions);
      let secondGranted = false;
      const second = b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 30_000 }).then((lease) => {
        secondGranted = true;
        return lease;
      });
      await roundTrip(b); // b's first attempt has been answered: the key was taken
      assert.equal(secondGranted, false);

      await first.release();
      const secondLease = await second;
      assert.equal(secondLease.key, key);
      assertFenceGrew(first, secondLease);

      await secondLease.release();
      const third = await a.acquire(key, lockOptions);
      assertFenceGrew(secondLease, third);
      await third.release();
    });

    test('acquire gives up with LockTimeoutError, naming the key by hash only, while another holder keeps the key', async () => {
      const held = await a.acquire(key, lockOptions);
      await assert.rejects(b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 }), (error: unknown) => {
        assert.ok(error instanceof LockTimeoutError, `expected a LockTimeoutError, got ${String(error)}`);
        assert.equal(error.code, 'ERR_LOCK_TIMEOUT');
        assert.ok(!error.message.includes(key), 'the message names the key');
        assert.ok(!error.message.includes(key.slice('key-'.length)), 'the message names the key');
        return true;
      });
      await held.release();
    });

    test('a holder that never releases loses the key after its lease; its extend() then fails and its release() does not free the new holder', async () => {
      const old = await a.acquire(key, { leaseMs: 200, waitTimeoutMs: 10_000 }); // never released
      const newer = await b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 5_000 });
      assertFenceGrew(old, newer);

      assert.equal(await old.extend(10_000), false);
      assert.equal(await old.release(), undefined);
      await assert.rejects(a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 }), LockTimeoutError);

      assert.equal(await newer.extend(10_000), true); // still the holder
      await newer.release();
    });

    test('extend keeps the lock beyond its original lease', async () => {
      const lease = await a.acquire(key, { leaseMs: 200, waitTimeoutMs: 10_000 });
      assert.equal(await lease.extend(10_000), true);
      await assert.rejects(b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 400 }), LockTimeoutError);
      assert.equal(await lease.extend(10_000), true);
      await lease.release();
    });

    test('release is idempotent and a repeated release never frees a later holder', async () => {
      const first = await a.acquire(key, lockOptions);
      await first.release();
      assert.equal(await first.release(), undefined);
      assert.equal(await first.extend(10_000), false);

      const second = await b.acquire(key, lockOptions);
      await first.release();
      await assert.rejects(a.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 }), LockTimeoutError);
      await second.release();
      await second.release();
      const third = await a.acquire(key, lockOptions);
      await third.release();
    });

    test('claim: the first claim is claimed, others are busy while it is held, and done with its outcome once completed', async () => {
      const lease = expectClaimed(await a.claim(key, claimOptions));
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'busy' });
      assert.deepEqual(await a.claim(key, claimOptions), { state: 'busy' });

      assert.equal(await a.complete(lease, 'outcome-1', TTL), true);
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'done', outcome: 'outcome-1' });
      assert.deepEqual(await a.claim(key, claimOptions), { state: 'done', outcome: 'outcome-1' });
      assert.equal(await lease.extend(10_000), false); // complete released the lease
    });

    test('claim: of concurrent claims from both instances exactly one is claimed, the other busy', async () => {
      const claims = await Promise.all([a.claim(key, claimOptions), b.claim(key, claimOptions)]);
      assert.deepEqual(claims.map((claim) => claim.state).sort(), ['busy', 'claimed']);
      const winner = claims.findIndex((claim) => claim.state === 'claimed');
      const lease = expectClaimed(claims[winner]!);
      assert.equal(await [a, b][winner]!.complete(lease, 'outcome-1', TTL), true);
      assert.deepEqual(await [b, a][winner]!.claim(key, claimOptions), { state: 'done', outcome: 'outcome-1' });
    });

    test('claim after the claimer lease expired without an outcome is abandoned; settle records an outcome for everyone and never replaces one', async () => {
      expectClaimed(await a.claim(key, { leaseMs: 200, recordTtlMs: TTL })); // never completed
      assert.deepEqual(await claimUntilNotBusy(b, key), { state: 'abandoned' });
      assert.deepEqual(await a.claim(key, claimOptions), { state: 'abandoned' });

      assert.equal(await b.settle(key, 'unknown', TTL), 'unknown');
      assert.deepEqual(await a.claim(key, claimOptions), { state: 'done', outcome: 'unknown' });
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'done', outcome: 'unknown' });

      assert.equal(await a.settle(key, 'other', TTL), 'unknown');
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'done', outcome: 'unknown' });
    });

    if (options.withdraw !== false) {
      test('withdraw gives a claim back: a waiter on the other instance wakes and claims the work afresh, with a higher fence', async () => {
        const lease = expectClaimed(await a.claim(key, claimOptions));
        assert.deepEqual(await b.claim(key, claimOptions), { state: 'busy' });
        const waiting = b.waitForChange(key, 30_000);
        assert.equal(await withdraw(a, lease), true);
        await waiting; // a missed wake-up would wait the full 30 s and hit this test's timeout
        const next = expectClaimed(await b.claim(key, claimOptions)); // not 'abandoned'
        assertFenceGrew(lease, next);
        assert.equal(await lease.extend(10_000), false);
        assert.equal(await withdraw(a, lease), false); // it no longer holds the claim: the new claimer keeps it
        assert.deepEqual(await a.claim(key, claimOptions), { state: 'busy' });
      }, 10_000);

      test('withdraw by a claimer whose lease expired changes nothing: the claim stays abandoned', async () => {
        const stale = expectClaimed(await a.claim(key, { leaseMs: 200, recordTtlMs: TTL }));
        assert.deepEqual(await claimUntilNotBusy(b, key), { state: 'abandoned' });
        assert.equal(await withdraw(a, stale), false);
        assert.deepEqual(await b.claim(key, claimOptions), { state: 'abandoned' });
      });
    }

    test('settle on completed work returns the recorded outcome and does not replace it', async () => {
      const lease = expectClaimed(await a.claim(key, claimOptions));
      assert.equal(await a.complete(lease, 'outcome-1', TTL), true);
      assert.equal(await b.settle(key, 'unknown', TTL), 'outcome-1');
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'done', outcome: 'outcome-1' });
    });

    test('fencing: a claimer whose lease expired cannot overwrite the outcome settled by someone else', async () => {
      const stale = expectClaimed(await a.claim(key, { leaseMs: 200, recordTtlMs: TTL }));
      assert.deepEqual(await claimUntilNotBusy(b, key), { state: 'abandoned' });
      assert.equal(await b.settle(key, 'unknown', TTL), 'unknown');

      assert.equal(await a.complete(stale, 'late-outcome', TTL), false);
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'done', outcome: 'unknown' });
      assert.deepEqual(await a.claim(key, claimOptions), { state: 'done', outcome: 'unknown' });
    });

    test('waitForChange wakes a waiter on the other instance when the work is completed', async () => {
      const lease = expectClaimed(await a.claim(key, claimOptions));
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'busy' });
      const waiting = b.waitForChange(key, 30_000);
      assert.equal(await a.complete(lease, 'outcome-1', TTL), true);
      await waiting; // a missed wake-up would wait the full 30 s and hit this test's timeout
      assert.deepEqual(await b.claim(key, claimOptions), { state: 'done', outcome: 'outcome-1' });
    }, 10_000);

    test('waitForChange resolves after its timeout when nothing happens', async () => {
      assert.equal(await b.waitForChange(key, 50), undefined);
    });

    test('after close(), acquire, claim, complete and settle reject with ClosedError; release does not throw', async () => {
      const lease = expectClaimed(await a.claim(key, claimOptions));
      const held = await a.acquire(key, lockOptions);
      await a.close();
      await a.close(); // idempotent

      const calls: [string, () => Promise<unknown>][] = [
        ['acquire', () => a.acquire(`${key}-2`, lockOptions)],
        ['claim', () => a.claim(`${key}-2`, claimOptions)],
        ['complete', () => a.complete(lease, 'outcome-1', TTL)],
        ['settle', () => a.settle(key, 'unknown', TTL)],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof ClosedError, `${name}: expected a ClosedError, got ${String(error)}`);
          assert.equal(error.code, 'ERR_CLOSED', name);
          return true;
        });
      }
      assert.equal(await held.release(), undefined);
    });
  });
}
