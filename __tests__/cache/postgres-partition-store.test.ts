// PostgresPartitionStore on a real PostgreSQL: the compare-and-set is one statement, so a late
// write never overwrites newer data and concurrent writers of one partition lose nothing.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvPostgres from '@keyv/postgres';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore } from '../../src';
import { openPgPool, PostgresPartitionStore } from '../../src/cache/postgres-partition-store';
import type { PgPoolLike } from '../../src/cache/postgres-partition-store';
import type { PartitionRecord } from '../../src/cache/partition-store';
import { PostgresServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';

const TIMEOUT_MS = 1000;
/** The cache's default deadline, for the busy test (40 writes at once on a shared machine). */
const DEFAULT_TIMEOUT_MS = 2000;
const HOUR = 3_600_000;
const record = (version: string): PartitionRecord => ({ version, partition: 'p-hash', cache: `{"v":"${version}"}` });

describe('PostgresPartitionStore', () => {
  let server: PostgresServer;
  let raw: PgPoolLike;
  const opened: PostgresPartitionStore[] = [];

  beforeAll(async () => {
    server = await PostgresServer.start();
    raw = openPgPool({ connectionString: server.url });
    raw.on?.('error', () => undefined); // idle connections cut by the outage test
  });
  afterAll(async () => {
    await raw.end();
    await server.stop();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  function newStore(namespace?: string, timeoutMs = TIMEOUT_MS): PostgresPartitionStore {
    const store = new PostgresPartitionStore(openPgPool({ connectionString: server.url }), timeoutMs, namespace);
    opened.push(store);
    return store;
  }

  /** Time passes for one row: it expired a second ago. */
  async function expire(key: string): Promise<void> {
    await raw.query(`UPDATE msal_dc_partitions SET expires_at = now() - interval '1 second' WHERE key = $1`, [key]);
    await raw.query(`UPDATE msal_dc_values SET expires_at = now() - interval '1 second' WHERE key = $1`, [key]);
  }

  it('a late write never overwrites newer data: the stale version is refused and the current row returned', async () => {
    const [first, late] = [newStore(), newStore()];
    const key = `k-${randomUUID()}`;
    expect(await first.compareAndSet(key, '', record('v1'), HOUR)).toEqual({ ok: true });
    // The late writer read "absent" before v1 was written.
    expect(await late.compareAndSet(key, '', record('late'), HOUR)).toEqual({
      ok: false,
      current: { kind: 'found', record: record('v1') },
    });
    expect(await first.compareAndSet(key, 'v1', record('v2'), HOUR)).toEqual({ ok: true });
    // The late writer read v1, v2 has been written since.
    expect(await late.compareAndSet(key, 'v1', record('late'), HOUR)).toEqual({
      ok: false,
      current: { kind: 'found', record: record('v2') },
    });
    expect(await late.compareAndSet(key, 'missing', record('late'), HOUR)).toEqual({
      ok: false,
      current: { kind: 'found', record: record('v2') },
    });
    expect(await first.read(key)).toEqual({ kind: 'found', record: record('v2') });
  });

  it('a write naming a version finds nothing to replace when the record is absent, and writes nothing', async () => {
    const store = newStore();
    const key = `k-${randomUUID()}`;
    expect(await store.compareAndSet(key, 'v1', record('v2'), HOUR)).toEqual({ ok: false, current: { kind: 'absent' } });
    expect(await store.read(key)).toEqual({ kind: 'absent' });
    expect(await store.compareAndSet(key, '', record('v3'), HOUR)).toEqual({ ok: true });
  });

  it('deletes by compare-and-set: only the version read', async () => {
    const store = newStore();
    const key = `k-${randomUUID()}`;
    await store.compareAndSet(key, '', record('v1'), HOUR);
    expect(await store.compareAndSet(key, 'v0', null, HOUR)).toEqual({ ok: false, current: { kind: 'found', record: record('v1') } });
    expect(await store.compareAndSet(key, '', null, HOUR)).toEqual({ ok: false, current: { kind: 'found', record: record('v1') } });
    expect(await store.compareAndSet(key, 'v1', null, HOUR)).toEqual({ ok: true });
    expect(await store.read(key)).toEqual({ kind: 'absent' });
    expect(await store.compareAndSet(key, '', null, HOUR)).toEqual({ ok: true });
    expect(await store.compareAndSet(key, 'v1', null, HOUR)).toEqual({ ok: false, current: { kind: 'absent' } });
  });

  it('writes expires_at from the time-to-live; expired rows read as absent, are overwritable as absent, and are cleaned up', async () => {
    const store = newStore();
    const key = `k-${randomUUID()}`;
    await store.compareAndSet(key, '', record('v1'), 60_000);
    await store.setValue(key, 'outcome', 60_000);
    const { rows } = await raw.query(
      `SELECT expires_at > now() AND expires_at <= now() + interval '60 seconds' AS within FROM msal_dc_partitions WHERE key = $1`,
      [key],
    );
    expect(rows).toEqual([{ within: true }]);
    expect(await store.getValue(key)).toBe('outcome');

    await expire(key);
    expect(await store.read(key)).toEqual({ kind: 'absent' });
    expect(await store.getValue(key)).toBeUndefined();
    // The expired version no longer matches: the writer that read it is told the record is gone.
    expect(await store.compareAndSet(key, 'v1', record('v2'), HOUR)).toEqual({ ok: false, current: { kind: 'absent' } });
    expect(await store.compareAndSet(key, '', record('v3'), HOUR)).toEqual({ ok: true });
    expect(await store.read(key)).toEqual({ kind: 'found', record: record('v3') });

    await expire(key);
    expect(await store.cleanup()).toBeGreaterThanOrEqual(2);
    const left = await raw.query(
      `SELECT key FROM msal_dc_partitions WHERE key = $1 UNION ALL SELECT key FROM msal_dc_values WHERE key = $1`,
      [key],
    );
    expect(left.rows).toEqual([]);
  });

  it('keeps Keyv namespaces apart as <namespace>::<key>', async () => {
    const [blue, green] = [newStore('blue'), newStore('green')];
    const key = `k-${randomUUID()}`;
    await blue.compareAndSet(key, '', record('b1'), HOUR);
    await blue.setValue(key, 'blue value', HOUR);
    expect(await green.read(key)).toEqual({ kind: 'absent' });
    expect(await green.getValue(key)).toBeUndefined();
    expect(await green.compareAndSet(key, '', record('g1'), HOUR)).toEqual({ ok: true });
    const { rows } = await raw.query(`SELECT key, version FROM msal_dc_partitions WHERE key LIKE $1 ORDER BY key`, [`%${key}`]);
    expect(rows).toEqual([
      { key: `blue::${key}`, version: 'b1' },
      { key: `green::${key}`, version: 'g1' },
    ]);
  });

  it('migrationSql is the DDL run on first use, idempotent, with table names of choice', async () => {
    const sql = PostgresPartitionStore.migrationSql({ schema: 'tokens', partitions: 'parts', values: 'vals' });
    await raw.query(sql);
    await raw.query(sql);
    const { rows } = await raw.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'tokens' ORDER BY table_name`);
    expect(rows).toEqual([{ table_name: 'parts' }, { table_name: 'vals' }]);
    expect(PostgresPartitionStore.migrationSql()).toContain('CREATE TABLE IF NOT EXISTS "public"."msal_dc_partitions"');
  });

  it('works for a role that may not create tables, once the migration has run', async () => {
    const schema = `s_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const role = `r_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await raw.query(PostgresPartitionStore.migrationSql({ schema }));
    await raw.query(`CREATE ROLE ${role} LOGIN`);
    await raw.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await raw.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
    const store = new PostgresPartitionStore(
      openPgPool({ connectionString: server.url.replace('postgres@', `${role}@`) }),
      TIMEOUT_MS,
      undefined,
      {
        schema,
      },
    );
    opened.push(store);
    // One implicit transaction: the SET ROLE is rolled back with the failed CREATE.
    await expect(raw.query(`SET ROLE ${role}; CREATE TABLE ${schema}.forbidden (id int)`)).rejects.toMatchObject({ code: '42501' });
    expect(await store.compareAndSet('k', '', record('v1'), HOUR)).toEqual({ ok: true });
    expect(await store.read('k')).toEqual({ kind: 'found', record: record('v1') });
    await store.setValue('k', 'value', HOUR);
    expect(await store.getValue('k')).toBe('value');
  });

  describe('with DistributedTokenCache', () => {
    let entra: FakeEntraId;
    const redirectUri = 'https://app.example.test/auth/callback';
    const caches: DistributedTokenCache[] = [];
    let keyvs: Keyv[] = [];

    beforeAll(async () => {
      entra = await startFakeEntraId();
    });
    afterAll(async () => {
      await keyvs[0]?.disconnect(); // @keyv/postgres: one pool per process (none left after the outage test)
      await entra.close();
    });
    afterEach(async () => {
      await Promise.all(caches.splice(0).map((cache) => cache.close()));
    });

    function instance(keyPrefix: string, storeTimeoutMs = TIMEOUT_MS): { app: DistributedClientApplication; cache: DistributedTokenCache } {
      const keyv = new Keyv({ store: new KeyvPostgres({ uri: server.url }) });
      keyvs.push(keyv);
      // Its own pool per cache (the KeyvPostgres's options), as separate processes would have.
      const cache = new DistributedTokenCache({ store: keyv, lockStore: new MemoryLockStore(), keyPrefix, storeTimeoutMs });
      caches.push(cache);
      return { app: new DistributedClientApplication(entra.msalConfig(), { cache }), cache };
    }

    it('is chosen for @keyv/postgres: atomic writes, no lock', () => {
      expect(instance(`p-${randomUUID()}:`).cache.atomicWrites).toBe(true);
    });

    it('concurrent writers of one partition from 4 caches lose no update: 40 distinct tokens written at once all survive', async () => {
      const keyPrefix = `lost-${randomUUID()}:`;
      const apps = Array.from({ length: 4 }, () => instance(keyPrefix, DEFAULT_TIMEOUT_MS).app);
      const user = addRandomUser(entra, 'Concurrent User');
      const homeAccountId = entra.homeAccountIdOf(user);
      await apps[0]!.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });
      const scopesOf = (writer: number): string[] =>
        Array.from({ length: 10 }, (_, index) => `https://w${writer}.example.test/scope${index}`);

      await Promise.all(
        apps.flatMap((app, writer) => scopesOf(writer).map((scope) => app.acquireTokenSilent({ homeAccountId, scopes: [scope] }))),
      );

      const callsBefore = entra.tokenCallCount();
      const reader = instance(keyPrefix).app;
      for (let writer = 0; writer < apps.length; writer++) {
        for (const scope of scopesOf(writer))
          expect((await reader.acquireTokenSilent({ homeAccountId, scopes: [scope] })).fromCache).toBe(true);
      }
      expect(entra.tokenCallCount()).toBe(callsBefore);
    });

    it('a stopped PostgreSQL fails calls with ERR_STORE_UNAVAILABLE within the deadline, and they work again after a restart', async () => {
      const keyPrefix = `outage-${randomUUID()}:`;
      const { app, cache } = instance(keyPrefix);
      const user = addRandomUser(entra, 'Outage User');
      const homeAccountId = entra.homeAccountIdOf(user);
      await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });

      // @keyv/postgres's own pool (unused by the cache) has no 'error' listener: a lost idle
      // connection would be an unhandled 'error' event. End it before the outage.
      await keyvs[0]!.disconnect();
      keyvs = [];
      await server.kill();
      try {
        await expect(cache.connect()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
        await expect(app.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] })).rejects.toMatchObject({
          code: 'ERR_STORE_UNAVAILABLE',
        });
      } finally {
        await server.restart();
      }

      await cache.connect();
      const result = await app.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] });
      expect(result.fromCache).toBe(true);
    });
  });
});
