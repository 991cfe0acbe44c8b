// PostgresLockStore on a real PostgreSQL (PostgresServer): the lock-store contract, then what only
// it has: LISTEN/NOTIFY waking waiters, expired rows cleaned, the migration for createTable: false,
// and a PostgreSQL that stops (typed errors within the deadline) and comes back (the same store works).
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { LockTimeoutError, PostgresLockStore, StoreUnavailableError } from '../../src';
import type { Lease } from '../../src';
import { loadPg } from '../../src/lock/postgres/connection';
import { PostgresServer } from '../../src/testing';
import { expectClaimed, lockStoreContract, roundTrip } from '../../src/testing/lock-store-contract';

jest.setTimeout(60_000);

const claimOptions = { leaseMs: 10_000, recordTtlMs: 60_000 };
const lockOptions = { leaseMs: 10_000, waitTimeoutMs: 1_000 };
const table = (): string => `locks_${randomUUID().replaceAll('-', '')}`;

let server: PostgresServer;
beforeAll(async () => {
  server = await PostgresServer.start();
});
afterAll(async () => {
  await server.stop();
});

const stores: PostgresLockStore[] = [];
function newStore(options: ConstructorParameters<typeof PostgresLockStore>[0]): PostgresLockStore {
  const store = new PostgresLockStore(options);
  stores.push(store);
  return store;
}
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

lockStoreContract(
  { describe, test, beforeEach, afterEach },
  () => {
    const tableName = table();
    return {
      a: new PostgresLockStore({ connectionString: server.url, tableName }),
      b: new PostgresLockStore({ connectionString: server.url, tableName }),
    };
  },
  { name: 'PostgresLockStore' },
);

/** A pool of our own, to look into the table. */
async function withPool<T>(url: string, work: (pool: InstanceType<ReturnType<typeof loadPg>['Pool']>) => Promise<T>): Promise<T> {
  const { Pool } = loadPg();
  const pool = new Pool({ connectionString: url });
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}

describe('PostgresLockStore', () => {
  it('wakes a waiter of another store by NOTIFY when the work is completed', async () => {
    const tableName = table();
    const a = newStore({ connectionString: server.url, tableName });
    const b = newStore({ connectionString: server.url, tableName });
    await a.connect(); // listening
    const lease = expectClaimed(await b.claim('k', claimOptions));
    let woken = false;
    // Far longer than the test's timeout: only a notification can end it in time.
    const waiting = a.waitForChange('k', 10 * 60_000).then(() => {
      woken = true;
    });
    await roundTrip(a);
    expect(woken).toBe(false);
    expect(await b.complete(lease, 'outcome', 60_000)).toBe(true);
    await waiting;
    expect(await a.claim('k', claimOptions)).toEqual({ state: 'done', outcome: 'outcome' });
    expect(a.waitingKeys).toBe(0);
  });

  it('ignores expired records on read and deletes expired rows', async () => {
    const tableName = table();
    const store = newStore({ connectionString: server.url, tableName });
    // Short lease and records: the row outlives neither by more than a few milliseconds.
    const lease = expectClaimed(await store.claim('k', { leaseMs: 50, recordTtlMs: 1 }));
    expect(await store.complete(lease, 'outcome', 1)).toBe(true);
    // The outcome lives 1 ms on the server's clock: ignored once over, though its row is still there.
    while ((await store.claim('k', { leaseMs: 1, recordTtlMs: 1 })).state === 'done') await roundTrip(store);
    const rows = (): Promise<number> =>
      withPool(server.url, async (pool) =>
        Number((await pool.query(`SELECT count(*) AS n FROM "${tableName}" WHERE key LIKE '%:k'`)).rows[0]!['n']),
      );
    expect(await rows()).toBe(1);
    let deleted = 0;
    while ((await rows()) > 0) deleted += await store.deleteExpired();
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(await store.claim('k', claimOptions)).toMatchObject({ state: 'claimed' });
  });

  it('deletes expired rows by itself, in the background of its calls, every cleanupIntervalMs', async () => {
    const tableName = table();
    const store = newStore({ connectionString: server.url, tableName, cleanupIntervalMs: 1 });
    const lease = expectClaimed(await store.claim('k', { leaseMs: 50, recordTtlMs: 1 }));
    expect(await store.complete(lease, 'outcome', 1)).toBe(true);
    const rows = (): Promise<number> =>
      withPool(server.url, async (pool) =>
        Number((await pool.query(`SELECT count(*) AS n FROM "${tableName}" WHERE key LIKE '%:k'`)).rows[0]!['n']),
      );
    // Other keys' calls only: the row of 'k' goes once it expired.
    for (let i = 0; (await rows()) > 0; i++) await store.claim(`other-${i}`, claimOptions);
    expect(await rows()).toBe(0);
  });

  it('works with createTable: false on a table made by migrationSql(), and says what to check without it', async () => {
    const tableName = table();
    const sql = PostgresLockStore.migrationSql({ tableName, schema: 'locks' });
    expect(sql).toContain(`CREATE TABLE IF NOT EXISTS "locks"."${tableName}"`);

    const missing = newStore({ connectionString: server.url, tableName, schema: 'locks', createTable: false });
    const error = await missing.claim('k', claimOptions).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).code).toBe('ERR_STORE_UNAVAILABLE');
    expect((error as Error).message).toMatch(/table locks\..* exists/);

    await withPool(server.url, async (pool) => {
      await pool.query(sql);
      await pool.query(sql); // idempotent
      const store = newStore({ pool, tableName, schema: 'locks', createTable: false });
      const lease = expectClaimed(await store.claim('k', claimOptions));
      expect(await store.complete(lease, 'outcome', 60_000)).toBe(true);
      expect(await store.claim('k', claimOptions)).toEqual({ state: 'done', outcome: 'outcome' });
      await store.close(); // never ends the given pool
      expect((await pool.query('SELECT 1 AS one')).rows[0]!['one']).toBe(1);
    });
  });

  it('rejects with ERR_STORE_UNAVAILABLE while PostgreSQL is stopped, and the same store works again after a restart', async () => {
    const own = await PostgresServer.start();
    try {
      const tableName = table();
      const store = newStore({ connectionString: own.url, tableName, commandTimeoutMs: 500 });
      await store.connect();
      await (await store.acquire('k', lockOptions)).release();

      await own.kill();
      const errors = await Promise.all(
        [store.acquire('k', lockOptions), store.claim('c', claimOptions), store.settle('c', 'x', 60_000)].map((call) =>
          call.then(
            () => undefined,
            (caught: unknown) => caught,
          ),
        ),
      );
      for (const error of errors) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).code).toBe('ERR_STORE_UNAVAILABLE');
        expect((error as Error).message).toMatch(/check that PostgreSQL is up and reachable/);
      }

      await own.restart();
      // No event tells when a connection succeeds again: retry while the store is unavailable.
      let lease: Lease | undefined;
      while (!lease) {
        try {
          lease = await store.acquire('k', lockOptions);
        } catch (error) {
          expect([StoreUnavailableError, LockTimeoutError].some((type) => error instanceof type)).toBe(true);
          await delay(50);
        }
      }
      await lease.release();
      const claimed = expectClaimed(await store.claim('c', claimOptions));
      expect(await store.complete(claimed, 'outcome-1', 60_000)).toBe(true);

      // It listens again: a waiter is woken by another store's completion, long before its timeout.
      // (When listening again takes longer than connect()'s 500 ms, it wakes every waiter once it
      // is done, in case a notification was missed: such a wake comes before the completion, and
      // the waiter waits again.)
      const other = newStore({ connectionString: own.url, tableName, commandTimeoutMs: 500 });
      await store.connect();
      const work = expectClaimed(await other.claim('w', claimOptions));
      let waiting: Promise<void>;
      for (;;) {
        let woken = false;
        waiting = store.waitForChange('w', 10 * 60_000).then(() => {
          woken = true;
        });
        await roundTrip(store);
        if (!woken) break;
      }
      expect(await other.complete(work, 'outcome-2', 60_000)).toBe(true);
      await waiting;
    } finally {
      await own.stop();
    }
  });

  it('ships its default migration as sql/postgres-lock-store.sql', async () => {
    const shipped = await readFile(join(__dirname, '../../sql/postgres-lock-store.sql'), 'utf8');
    expect(shipped.replace(/^--.*\n/gm, '')).toBe(PostgresLockStore.migrationSql());
  });

  it('checks its options', () => {
    expect(() => new PostgresLockStore({})).toThrow(/exactly one of "connectionString"/);
    expect(() => new PostgresLockStore({ connectionString: 'postgresql://x', tableName: 'bad-name' })).toThrow(/plain SQL identifier/);
    expect(() => PostgresLockStore.migrationSql({ schema: 'a"b' })).toThrow(/plain SQL identifier/);
  });
});
