// One app instance for the fleet single flight benchmark: DistributedClientApplication on Redis
// (@keyv/redis, default options: the L1 on) with a RedisLockStore shared by all instances, in its
// own OS process. `silentStorm` / `appStorm` fire `count` identical calls at once, at the
// wall-clock time `startAt`, and report when each ended and what the flight events said, with a
// timeline of the flight's lock-store calls (claim, waitForChange, complete: the real calls, timed
// by wrapping the store's methods) and of the partition reads (cache:hit / cache:miss), for the
// profile of where a waiter's time goes.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { describe, redisAppFromEnv, serve } from '../lib/worker-serve';

const { lockStore, cache, app } = redisAppFromEnv();

/** Wall-clock time in ms with sub-millisecond precision (comparable across processes on one machine). */
const now = (): number => performance.timeOrigin + performance.now();

interface Span {
  start: number;
  end: number;
}

interface FlightCounts {
  held: number;
  waited: number;
  takenOver: number;
  uncoordinated: number;
  waitedFailed: number;
  /** When this process's flight:held / flight:waited fired (wall clock), for the profile. */
  heldAt: number[];
  waitedAt: number[];
  waitedMs: number[];
  /** The flight's claims (with the state they returned), waits (with their timeout) and completions. */
  claims: (Span & { state: string })[];
  waits: (Span & { timeoutMs: number })[];
  completes: Span[];
  /** Partition reads: when each ended, and where it was answered ('l1', 'store', or 'miss'). */
  reads: { at: number; level: string }[];
}

const newCounts = (): FlightCounts => ({
  held: 0,
  waited: 0,
  takenOver: 0,
  uncoordinated: 0,
  waitedFailed: 0,
  heldAt: [],
  waitedAt: [],
  waitedMs: [],
  claims: [],
  waits: [],
  completes: [],
  reads: [],
});
let counts = newCounts();
app.on('flight:held', () => {
  counts.held++;
  counts.heldAt.push(now());
});
app.on('flight:waited', ({ outcome, waitedMs }) => {
  counts.waited++;
  if (outcome === 'failed') counts.waitedFailed++;
  counts.waitedAt.push(now());
  counts.waitedMs.push(waitedMs);
});
cache.on('cache:hit', ({ level }) => counts.reads.push({ at: now(), level: level ?? 'unknown' }));
cache.on('cache:miss', () => counts.reads.push({ at: now(), level: 'miss' }));

// Times the lock-store calls of flights (their keys start with 'flight:'); everything else passes through untimed.
/** When the current storm began: a wait left from an earlier one is not this storm's. */
let stormStart = 0;
const isFlight = (key: string, start: number): boolean => key.startsWith('flight:') && start >= stormStart;
const { claim, waitForChange, complete } = {
  claim: lockStore.claim.bind(lockStore),
  waitForChange: lockStore.waitForChange.bind(lockStore),
  complete: lockStore.complete.bind(lockStore),
};
lockStore.claim = async (key, options) => {
  const start = now();
  const result = await claim(key, options);
  if (isFlight(key, start)) counts.claims.push({ start, end: now(), state: result.state });
  return result;
};
lockStore.waitForChange = async (key, timeoutMs) => {
  const start = now();
  await waitForChange(key, timeoutMs);
  if (isFlight(key, start)) counts.waits.push({ start, end: now(), timeoutMs });
};
lockStore.complete = async (lease, outcome, recordTtlMs) => {
  const start = now();
  const recorded = await complete(lease, outcome, recordTtlMs);
  if (isFlight(lease.key, start)) counts.completes.push({ start, end: now() });
  return recorded;
};
app.on('flight:taken-over', () => counts.takenOver++);
app.on('flight:uncoordinated', () => counts.uncoordinated++);

async function waitUntil(at: number): Promise<void> {
  const remaining = at - now();
  if (remaining > 2) await new Promise((resolve) => setTimeout(resolve, remaining - 2));
  while (now() < at) {
    // spin the last ~2 ms: timers are not that precise
  }
}

/** A short SHA-256 of a token: which token a call got, without the token leaving the process. */
const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex').slice(0, 16);

/** `count` calls of `call` at once from `startAt`; each call's start, end, and what it got (a hash of the access token). */
async function storm(
  count: number,
  startAt: number,
  call: () => Promise<{ fromCache: boolean; accessToken: string; expiresOn: Date | null } | null>,
): Promise<unknown> {
  counts = newCounts();
  stormStart = now();
  await waitUntil(startAt);
  const calls = await Promise.all(
    Array.from({ length: count }, async () => {
      const startedAt = now();
      try {
        const result = await call();
        const endedAt = now();
        if (!result) return { ok: false, startedAt, endedAt, error: 'null result' };
        const expiresInS = result.expiresOn ? (result.expiresOn.getTime() - Date.now()) / 1000 : null;
        return { ok: true, startedAt, endedAt, fromCache: result.fromCache, token: tokenHash(result.accessToken), expiresInS };
      } catch (error) {
        return { ok: false, startedAt, endedAt: now(), error: describe(error) };
      }
    }),
  );
  return { calls, flights: counts };
}

serve(
  {
    warmUp: async () => {
      await app.warmUp();
      return {};
    },
    signIn: async (args) => {
      const result = await app.acquireTokenByCode(args.request as never);
      return { homeAccountId: result.account!.homeAccountId, expiresOn: result.expiresOn?.getTime() ?? null };
    },
    silentStorm: async (args) => {
      const { homeAccountId, scopes, count, startAt } = args as { homeAccountId: string; scopes: string[]; count: number; startAt: number };
      return storm(count, startAt, () => app.acquireTokenSilent({ homeAccountId, scopes }));
    },
    appStorm: async (args) => {
      const { scopes, count, startAt } = args as { scopes: string[]; count: number; startAt: number };
      return storm(count, startAt, () => app.acquireTokenByClientCredential({ scopes }));
    },
    state: async () => ({ waitingKeys: lockStore.waitingKeys }),
  },
  () => cache.close(),
);
