// One app instance for the duplicate-storm benchmark: DistributedClientApplication on Redis with a
// RedisLockStore shared by all instances (or on PostgreSQL with PostgresLockStore when POSTGRES_URL is set). `storm` fires `count` identical acquireTokenByCode calls at
// once, at the wall-clock time `startAt`, and reports when each one ended. `warmUp` does the app's
// start-up work (app.warmUp()).
import { performance } from 'node:perf_hooks';
import { appFromEnv, describe, serve } from '../lib/worker-serve';

const { lockStore, cache, app } = appFromEnv();

const counts = { redeemed: 0, joined: 0, waited: 0, answered: 0 };
app.on('redeem:redeemed', () => counts.redeemed++);
app.on('redeem:joined', () => counts.joined++);
app.on('redeem:waited', () => counts.waited++);
app.on('redeem:answered-from-cache', () => counts.answered++);

/** Wall-clock time in ms with sub-millisecond precision (comparable across processes on one machine). */
const now = (): number => performance.timeOrigin + performance.now();

async function waitUntil(at: number): Promise<void> {
  const remaining = at - now();
  if (remaining > 2) await new Promise((resolve) => setTimeout(resolve, remaining - 2));
  while (now() < at) {
    // spin the last ~2 ms: timers are not that precise
  }
}

serve(
  {
    storm: async (args) => {
      const { request, count, startAt } = args as { request: Record<string, unknown>; count: number; startAt: number };
      const before = { ...counts };
      await waitUntil(startAt);
      const calls = await Promise.all(
        Array.from({ length: count }, async () => {
          const startedAt = now();
          try {
            const result = await app.acquireTokenByCode(request as never);
            return { ok: true, startedAt, endedAt: now(), homeAccountId: result.account?.homeAccountId };
          } catch (error) {
            return { ok: false, startedAt, endedAt: now(), error: describe(error) };
          }
        }),
      );
      const delta = Object.fromEntries(Object.entries(counts).map(([name, value]) => [name, value - before[name as keyof typeof counts]]));
      return { calls, events: delta };
    },
    // What an app does at start-up before taking traffic: connect the stores, fetch the OpenID configuration.
    warmUp: async () => {
      await app.warmUp();
      return {};
    },
    state: async () => ({ redemptionsInFlight: app.redemptionsInFlight, waitingKeys: lockStore.waitingKeys ?? 0 }),
  },
  () => cache.close(),
);
