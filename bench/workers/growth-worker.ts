// One app process for the growth benchmark (run with --expose-gc). MODE=ours: DistributedClientApplication
// on Redis (tokens and locks) with the default options: the in-process L1 holds the partitions it
// has seen, up to its bound. MODE=ours-l1-off: the same with `l1: false` (nothing per account in
// this process), on the partitions MODE=ours signed in. MODE=plain: one ConfidentialClientApplication whose
// in-memory cache holds every signed-in account, as a plain MSAL app does.
import { performance } from 'node:perf_hooks';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { AccountInfo, Configuration } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from '../../src';
import { collectGarbage, latencyOf } from '../lib/stats';
import { HitLevels, l1Options } from '../lib/l1';
import { describe, env, msalConfigFromEnv, serve } from '../lib/worker-serve';

const SCOPES = ['User.Read'];
const mode = env('MODE');
const config: Configuration = msalConfigFromEnv();
type CodeRequest = { code: string; codeVerifier: string; redirectUri: string; scopes: string[] };

// Locks in Redis too: the default MemoryLockStore would keep every sign-in's claim record in this
// heap for recordTtlMs (15 minutes; benchmark 5 measures that), which is not per-account state.
const cache =
  mode === 'ours' || mode === 'ours-l1-off'
    ? new DistributedTokenCache(
        l1Options(
          {
            store: new Keyv({ store: new KeyvRedis(env('REDIS_URL')) }),
            keyPrefix: env('KEY_PREFIX'),
            lockStore: new RedisLockStore({ url: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX') }),
          },
          mode === 'ours' ? 'default' : 'off',
        ),
      )
    : undefined;
const app = cache ? new DistributedClientApplication(config, { cache }) : undefined;
const levels = cache ? new HitLevels(cache) : undefined;
const plain = new ConfidentialClientApplication(config);
let authorityMetadata: string | undefined;
/** Sections of MSAL caches redeemed by loader clients, not yet merged into the plain singleton. */
let pending: Record<string, Record<string, unknown>> = {};

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/**
 * Plain: every code is redeemed by a new loader client (O(1) per code) and its cache merged into
 * the singleton in one deserialize; a singleton redeeming 10,000 codes itself slows down as its
 * cache fills, which would make this benchmark take far longer. The singleton ends up holding
 * exactly the entities it would hold had it redeemed the codes itself.
 */
async function plainSignIn(requests: CodeRequest[], concurrency: number): Promise<AccountInfo[]> {
  const accounts: AccountInfo[] = [];
  authorityMetadata ??= await (await fetch(`${config.auth.authority}/v2.0/.well-known/openid-configuration`)).text();
  const loaderConfig: Configuration = { ...config, auth: { ...config.auth, authorityMetadata } };
  await pool(requests, concurrency, async (request) => {
    const loader = new ConfidentialClientApplication(loaderConfig);
    accounts.push((await loader.acquireTokenByCode(request)).account!);
    const sections = JSON.parse(loader.getTokenCache().serialize()) as Record<string, Record<string, unknown>>;
    for (const [name, entries] of Object.entries(sections)) pending[name] = Object.assign(pending[name] ?? {}, entries);
  });
  return accounts;
}

function plainCommit(): number {
  const current = JSON.parse(plain.getTokenCache().serialize()) as Record<string, Record<string, unknown>>;
  for (const [name, entries] of Object.entries(pending)) current[name] = Object.assign(current[name] ?? {}, entries);
  pending = {};
  plain.getTokenCache().deserialize(JSON.stringify(current));
  return Object.keys(current.Account ?? {}).length;
}

serve(
  {
    signIn: async (args) => {
      const { requests, concurrency } = args as { requests: CodeRequest[]; concurrency: number };
      let failed = 0;
      let firstError: string | undefined;
      if (!app) return { failed, accounts: await plainSignIn(requests, concurrency) };
      await pool(requests, concurrency, async (request) => {
        await app.acquireTokenByCode(request).catch((error: unknown) => {
          failed++;
          firstError ??= describe(error);
        });
      });
      return { failed, firstError };
    },
    commit: async () => ({ accounts: app ? null : plainCommit() }),
    /** Ours: a silent call for each account, `concurrency` at a time (fills the L1); hits by level. */
    fill: async (args) => {
      const { homeAccountIds, concurrency } = args as { homeAccountIds: string[]; concurrency: number };
      levels!.reset();
      await pool(homeAccountIds, concurrency, async (homeAccountId) => {
        await app!.acquireTokenSilent({ homeAccountId, scopes: SCOPES });
      });
      return levels!.snapshot();
    },
    /**
     * Times acquireTokenSilent for each account in turn. Variant 'account' gets the AccountInfo
     * (kept by the parent, as an app keeps it in its session); the others only the homeAccountId.
     */
    silent: async (args) => {
      const { accounts, variant } = args as { accounts: AccountInfo[]; variant: 'ours' | 'oursL1Off' | 'account' | 'homeAccountId' };
      const samples: number[] = [];
      levels?.reset();
      for (const account of accounts) {
        const start = performance.now();
        let result: { fromCache: boolean };
        if (variant === 'ours' || variant === 'oursL1Off')
          result = await app!.acquireTokenSilent({ homeAccountId: account.homeAccountId, scopes: SCOPES });
        else if (variant === 'account') result = await plain.acquireTokenSilent({ account, scopes: SCOPES });
        else {
          const cached = await plain.getTokenCache().getAccountByHomeId(account.homeAccountId);
          result = await plain.acquireTokenSilent({ account: cached!, scopes: SCOPES });
        }
        samples.push(performance.now() - start);
        if (!result.fromCache) throw new Error('not a cache hit');
      }
      return { ...latencyOf(samples), levels: levels?.snapshot() ?? null };
    },
    heap: async () => {
      await collectGarbage();
      const usage = process.memoryUsage();
      return { heapUsed: usage.heapUsed, rss: usage.rss, external: usage.external };
    },
  },
  async () => {
    await cache?.close();
  },
);
