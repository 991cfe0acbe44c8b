// The migration for teams that forbid DDL at run time (docs/postgres.md): the SQL printed there is
// what the stores would run, and an app whose role may only read and write those tables (no CREATE
// on the database or the schema) signs users in and answers duplicates, with `createTable: false`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvPostgres from '@keyv/postgres';
import { DistributedClientApplication, DistributedTokenCache, PostgresLockStore } from '../../src';
import { PostgresPartitionStore } from '../../src/cache/postgres-partition-store';
import { PostgresServer } from '../../src/testing';
import { newPkceSignIn, useFakeEntraId } from '../helpers/entra';

const docs = readFileSync(join(__dirname, '..', '..', 'docs', 'postgres.md'), 'utf8');
const sqlBlocks = [...docs.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!);
const redirectUri = 'https://app.example.test/auth/callback';

describe('the PostgreSQL migration (createTable: false)', () => {
  const { entra, cleanups } = useFakeEntraId();

  it('docs/postgres.md prints the DDL of both stores, as they run it', () => {
    expect(sqlBlocks).toContain(PostgresLockStore.migrationSql());
    expect(sqlBlocks).toContain(PostgresPartitionStore.migrationSql());
  });

  it('with the tables made by the migration, a role with only SELECT, INSERT, UPDATE, DELETE on them signs in once per code and answers the duplicates', async () => {
    const postgres = await PostgresServer.start();
    cleanups.push(() => postgres.stop());
    // As the migration tool: the tables, and a role that may not create anything.
    const admin = new Keyv({ store: new KeyvPostgres({ uri: postgres.url }) });
    const run = (sql: string): Promise<unknown> => (admin.store as { query(sql: string): Promise<unknown> }).query(sql);
    await run(PostgresLockStore.migrationSql());
    await run(PostgresPartitionStore.migrationSql());
    await run('CREATE ROLE app LOGIN');
    await run('REVOKE CREATE ON DATABASE postgres FROM PUBLIC');
    await run('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await run('GRANT SELECT, INSERT, UPDATE, DELETE ON msal_dc_locks, msal_dc_partitions, msal_dc_values, keyv TO app');
    await admin.disconnect();

    const uri = postgres.url.replace('postgres@', 'app@');
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvPostgres({ uri }) }),
      lockStore: new PostgresLockStore({ connectionString: uri, createTable: false }),
    });
    cleanups.push(() => cache.close());
    const app = new DistributedClientApplication(entra().msalConfig(), { cache });
    await app.warmUp();
    const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'], codeVerifier: verifier })),
    );
    expect(new Set(results.map((result) => result.account?.homeAccountId))).toEqual(new Set([entra().homeAccountIdOf(user)]));
    expect(entra().tokenCallCount({ code })).toBe(1);
    const silent = await app.acquireTokenSilent({ homeAccountId: entra().homeAccountIdOf(user), scopes: ['User.Read'] });
    expect(silent.fromCache).toBe(true);
  });
});
