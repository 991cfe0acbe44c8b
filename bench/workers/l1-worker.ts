// One app instance for the coherence benchmark: DistributedClientApplication on Redis with the
// default options (the in-process L1 on). It reads (filling its L1), writes (a forced refresh), and
// reports when its L1 dropped a partition, on the monotonic clock that every process of the
// machine shares (process.hrtime), so that a write in one process and the drop in another compare.
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, PartitionKey } from '../../src';
import { HitLevels, l1Options, onInvalidation } from '../lib/l1';
import type { Invalidation } from '../lib/l1';
import { env, msalConfigFromEnv, serve } from '../lib/worker-serve';

const SCOPES = ['User.Read'];
const config = msalConfigFromEnv();
const cache = new DistributedTokenCache(
  l1Options({ store: new Keyv({ store: new KeyvRedis(env('REDIS_URL')) }), keyPrefix: env('KEY_PREFIX') }, 'default'),
);
const app = new DistributedClientApplication(config, { cache });
const levels = new HitLevels(cache);

/** Nanoseconds on the machine's monotonic clock, as text (JSON has no bigint). */
const now = (): string => process.hrtime.bigint().toString();

/** The level of the last cache:hit (`undefined` when none, or when the build reports none). */
let lastLevel: string | undefined;
cache.on('cache:hit', (event) => void (lastLevel = (event as { level?: string }).level));

/** When each partition was last written by this process (the cache:write event: the compare-and-set resolved). */
const writtenAt = new Map<string, string>();
cache.on('cache:write', ({ partitionHash }) => void writtenAt.set(partitionHash, now()));

/** The first drop of a partition (or of the whole L1) since `expect`, and whoever waits for it. */
const drops = new Map<string, { at: string; reason: string } | ((drop: { at: string; reason: string }) => void)>();
onInvalidation(cache, (invalidation: Invalidation) => {
  const at = now();
  for (const [partitionHash, entry] of drops) {
    if (typeof entry !== 'function' || (invalidation.partitionHash !== undefined && invalidation.partitionHash !== partitionHash)) continue;
    drops.set(partitionHash, { at, reason: invalidation.reason });
    entry({ at, reason: invalidation.reason });
  }
});

const partitionHashOf = (homeAccountId: string): string =>
  cache.partitionHash(PartitionKey.forAccount(homeAccountId).forClient(config.auth.clientId));

serve(
  {
    signIn: async (args) => {
      const result = await app.acquireTokenByCode(args.request as never);
      const homeAccountId = result.account!.homeAccountId;
      return { homeAccountId, partitionHash: partitionHashOf(homeAccountId) };
    },
    /** A silent call; says where its hit came from ('l1', 'store', or undefined without an L1). */
    read: async (args) => {
      lastLevel = undefined;
      const result = await app.acquireTokenSilent({ homeAccountId: args.homeAccountId as string, scopes: SCOPES });
      if (!result.fromCache) throw new Error('not a cache hit');
      return { level: lastLevel ?? null };
    },
    /** A forced refresh, which writes the partition; returns when the write resolved. */
    write: async (args) => {
      const homeAccountId = args.homeAccountId as string;
      const partitionHash = partitionHashOf(homeAccountId);
      writtenAt.delete(partitionHash);
      await app.acquireTokenSilent({ homeAccountId, scopes: SCOPES, forceRefresh: true });
      const at = writtenAt.get(partitionHash);
      if (at === undefined) throw new Error('the forced refresh wrote nothing');
      return { at };
    },
    /** From now on, remember the first time the L1 drops this partition. */
    expect: async (args) => {
      const partitionHash = args.partitionHash as string;
      drops.set(partitionHash, () => undefined);
      return {};
    },
    /** When the L1 dropped the partition since `expect` (waiting up to `timeoutMs`), or null. */
    dropped: async (args) => {
      const { partitionHash, timeoutMs } = args as { partitionHash: string; timeoutMs: number };
      const entry = drops.get(partitionHash);
      if (entry === undefined) throw new Error('call expect first');
      const drop =
        typeof entry === 'function'
          ? await new Promise<{ at: string; reason: string } | null>((resolve) => {
              const timer = setTimeout(() => resolve(null), timeoutMs);
              drops.set(partitionHash, (found) => {
                clearTimeout(timer);
                resolve(found);
              });
            })
          : entry;
      drops.delete(partitionHash);
      return drop;
    },
    levels: async () => levels.snapshot(),
  },
  async () => {
    await cache.close();
  },
);
