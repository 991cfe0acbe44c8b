// Child side of a bench worker: serves operations over JSON lines, exits when stdin closes.
import { createInterface } from 'node:readline';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import KeyvPostgres from '@keyv/postgres';
import { DistributedClientApplication, DistributedTokenCache, PostgresLockStore, RedisLockStore } from '../../src';
import type { LockStore } from '../../src';

export type Operations = Record<string, (args: Record<string, unknown>) => Promise<unknown>>;

export function serve(operations: Operations, onClose: () => Promise<void>): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const { id, op, args } = JSON.parse(line) as { id: number; op: string; args: Record<string, unknown> };
    const operation = operations[op];
    (operation ? operation(args) : Promise.reject(new Error(`unknown op ${op}`))).then(
      (value) => process.stdout.write(`${JSON.stringify({ id, ok: true, value: value ?? null })}\n`),
      (error: unknown) => process.stdout.write(`${JSON.stringify({ id, ok: false, error: describe(error) })}\n`),
    );
  });
  lines.on('close', () => {
    onClose().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
}

export function describe(error: unknown): string {
  const e = error as { name?: string; code?: string; errorCode?: string; message?: string };
  return [e?.name, e?.code ?? e?.errorCode, e?.message].filter(Boolean).join(': ') || String(error);
}

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function msalConfigFromEnv(): { auth: { clientId: string; clientSecret: string; authority: string; knownAuthorities: string[] } } {
  return {
    auth: {
      clientId: env('CLIENT_ID'),
      clientSecret: env('CLIENT_SECRET'),
      authority: env('AUTHORITY'),
      knownAuthorities: [env('KNOWN_AUTHORITY')],
    },
  };
}

/**
 * The app of a Redis-backed bench instance: DistributedClientApplication on Redis at REDIS_URL
 * (default options: the L1 on) with a RedisLockStore shared by every instance, under KEY_PREFIX.
 */
export function redisAppFromEnv(): { lockStore: RedisLockStore; cache: DistributedTokenCache; app: DistributedClientApplication } {
  const lockStore = new RedisLockStore({ url: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX') });
  const cache = new DistributedTokenCache({
    store: new Keyv({ store: new KeyvRedis(env('REDIS_URL')) }),
    keyPrefix: env('KEY_PREFIX'),
    lockStore,
  });
  return { lockStore, cache, app: new DistributedClientApplication(msalConfigFromEnv(), { cache }) };
}

/**
 * The app of a bench instance on the shared stores: on PostgreSQL at POSTGRES_URL when it is set
 * (@keyv/postgres and PostgresLockStore, no Redis), else as {@link redisAppFromEnv}.
 */
export function appFromEnv(): {
  lockStore: LockStore & { waitingKeys?: number };
  cache: DistributedTokenCache;
  app: DistributedClientApplication;
} {
  const postgresUrl = process.env.POSTGRES_URL;
  if (!postgresUrl) return redisAppFromEnv();
  const lockStore = new PostgresLockStore({ connectionString: postgresUrl });
  const cache = new DistributedTokenCache({
    store: new Keyv({ store: new KeyvPostgres({ uri: postgresUrl }) }),
    keyPrefix: env('KEY_PREFIX'),
    lockStore,
  });
  return { lockStore, cache, app: new DistributedClientApplication(msalConfigFromEnv(), { cache }) };
}
