// The Keyv stores the token cache claims to support, each with raw access for assertions and for
// planting corrupt entries: in-memory Keyv, Redis through @keyv/redis, PostgreSQL through @keyv/postgres.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import KeyvPostgres from '@keyv/postgres';
import { openPgPool, PostgresPartitionStore } from '../../src/cache/postgres-partition-store';
import { PostgresServer } from '../../src/testing';

export type CorruptVariant = 'random-bytes' | 'truncated-json' | 'wrong-shape' | 'wrong-format';

export interface StoreFixture {
  name: string;
  /** A Keyv for one app instance (instances of one test share the underlying data). */
  newKeyv(): Keyv;
  /** Whether the stored record exists. */
  exists(storageKey: string): Promise<boolean>;
  /** Epoch ms at which the record expires. */
  expiresAt(storageKey: string): Promise<number | undefined>;
  /** Copies the raw record from one key to another (the "another partition's blob" attack). */
  copy(fromKey: string, toKey: string): Promise<void>;
  /** Replaces the record with something that is not one. */
  corrupt(storageKey: string, variant: CorruptVariant): Promise<void>;
  /** Whether each cache opens connections of its own (PostgreSQL), which `cache.close()` ends. */
  closeCaches?: boolean;
  /** Closes what the fixture itself opened. */
  close(): Promise<void>;
}

const CORRUPT_VALUES: Record<CorruptVariant, unknown> = {
  'random-bytes': '\u0000\u00ff\u00fe garbage \u0007',
  'truncated-json': '{"format":"msal-distributed-cache/1","version":"v1","partition":"p","cache":"{\\"Account\\":{',
  'wrong-shape': { format: 'msal-distributed-cache/1', version: 'v1', partition: 42, cache: ['not', 'a', 'string'] },
  'wrong-format': { format: 'someone-else/9', version: 'v1', partition: 'p', cache: '{}' },
};

function keyvFixture(name: string, newKeyv: () => Keyv, close: () => Promise<void>): StoreFixture {
  const probe = newKeyv();
  return {
    name,
    newKeyv,
    exists: async (key) => (await probe.get(key)) !== undefined,
    expiresAt: async (key) => ((await probe.get(key, { raw: true })) as { expires?: number } | undefined)?.expires,
    copy: async (from, to) => {
      await probe.set(to, await probe.get(from));
    },
    corrupt: async (key, variant) => {
      await probe.set(key, CORRUPT_VALUES[variant]);
    },
    close,
  };
}

export function memoryStore(): StoreFixture {
  const shared = new Keyv();
  return keyvFixture(
    'in-memory Keyv',
    () => shared,
    async () => undefined,
  );
}

/** Raw rows of PostgresPartitionStore's table, for planting what no write of ours would. */
const PG_CORRUPT_ROWS: Record<CorruptVariant, { version: string; partition: string; cache: string }> = {
  'random-bytes': { version: 'v1', partition: 'p', cache: '\u00ff\u00fe garbage \u0007' },
  'truncated-json': { version: 'v1', partition: 'p', cache: '{"Account":{' },
  'wrong-shape': { version: '', partition: 'p', cache: '{}' },
  'wrong-format': { version: 'v1', partition: 'p', cache: '["not","a","cache"]' },
};

export async function postgresStore(): Promise<StoreFixture> {
  const server = await PostgresServer.start();
  const table = `t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  // @keyv/postgres shares one pool per process: every Keyv here uses the same one, closed once.
  const keyvs: Keyv[] = [];
  const newKeyv = (): Keyv => {
    const keyv = new Keyv({ store: new KeyvPostgres({ uri: server.url, table }) });
    keyvs.push(keyv);
    return keyv;
  };
  // Partitions are in PostgresPartitionStore's own table: raw access goes there.
  const raw = openPgPool({ connectionString: server.url });
  await raw.query(PostgresPartitionStore.migrationSql());
  const partitions = 'public.msal_dc_partitions';
  return {
    name: 'PostgreSQL (@keyv/postgres)',
    newKeyv,
    closeCaches: true,
    exists: async (key) => (await raw.query(`SELECT 1 FROM ${partitions} WHERE key = $1 AND expires_at > now()`, [key])).rowCount === 1,
    expiresAt: async (key) => {
      const { rows } = await raw.query(
        `SELECT (extract(epoch FROM expires_at) * 1000)::text AS at FROM ${partitions} WHERE key = $1 AND expires_at > now()`,
        [key],
      );
      return rows[0] ? Number(rows[0].at) : undefined;
    },
    copy: async (from, to) => {
      await raw.query(
        `INSERT INTO ${partitions} (key, version, partition, cache, expires_at) SELECT $2, version, partition, cache, expires_at FROM ${partitions} WHERE key = $1
         ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version, partition = EXCLUDED.partition, cache = EXCLUDED.cache, expires_at = EXCLUDED.expires_at`,
        [from, to],
      );
    },
    corrupt: async (key, variant) => {
      const row = PG_CORRUPT_ROWS[variant];
      await raw.query(
        `INSERT INTO ${partitions} (key, version, partition, cache, expires_at) VALUES ($1, $2, $3, $4, now() + interval '1 hour')
         ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version, partition = EXCLUDED.partition, cache = EXCLUDED.cache, expires_at = EXCLUDED.expires_at`,
        [key, row.version, row.partition, row.cache],
      );
    },
    close: async () => {
      await keyvs[0]?.disconnect();
      await raw.end();
      await server.stop();
    },
  };
}

export async function redisStore(): Promise<StoreFixture> {
  const url = process.env.REDIS_URL!;
  const raw = createClient({ url });
  await raw.connect();
  const keyvs: Keyv[] = [];
  return {
    name: 'Redis (@keyv/redis)',
    newKeyv: () => {
      const keyv = new Keyv({ store: new KeyvRedis(url) });
      keyvs.push(keyv);
      return keyv;
    },
    exists: async (key) => (await raw.exists(key)) === 1,
    expiresAt: async (key) => {
      const ttl = await raw.pTTL(key);
      return ttl > 0 ? Date.now() + ttl : undefined;
    },
    copy: async (from, to) => {
      await raw.hSet(to, await raw.hGetAll(from));
    },
    corrupt: async (key, variant) => {
      await raw.del(key);
      const value = CORRUPT_VALUES[variant];
      if (typeof value === 'string') await raw.set(key, value);
      else
        await raw.hSet(
          key,
          Object.fromEntries(Object.entries(value as object).map(([field, v]) => [field, typeof v === 'string' ? v : JSON.stringify(v)])),
        );
    },
    close: async () => {
      await Promise.all(keyvs.map((keyv) => keyv.disconnect()));
      raw.destroy();
    },
  };
}

/** The Redis the global setup started (or `REDIS_URL` from the environment), for tests sharing it. */
export function redisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: run the tests through jest (global setup)');
  return url;
}
