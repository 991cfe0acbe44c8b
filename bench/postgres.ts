// Benchmark 9 (issue 17): PostgreSQL as the one shared store, beside Redis. (1) A silent cache hit
// through this library with @keyv/postgres (no L1: that needs Redis) against Redis with its L1 and
// with `l1: false`, alternated in rounds. (2) The duplicate storm of benchmark 2 (K duplicates of
// one code over 4 OS processes, token endpoint 50 ms) with both stores on PostgreSQL
// (PostgresLockStore) and, in the same rounds, on Redis (RedisLockStore).
// It starts its own PostgreSQL (PostgresServer) unless POSTGRES_URL is set.
import Keyv from 'keyv';
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache } from '../src';
import { PostgresServer } from '../src/testing';
import { stormOnce } from './duplicate-storm';
import type { StormRun } from './duplicate-storm';
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, newUser, SCOPES, workerEnv } from './lib/context';
import { l1Options } from './lib/l1';
import type { BenchmarkResult } from './lib/report';
import { figure, latencyOf, ms, ratio, spread, timeSequential } from './lib/stats';
import type { Figure } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';

const PROCESSES = 4;
const TOKEN_LATENCY_MS = 50;

export async function postgres(context: BenchContext): Promise<BenchmarkResult> {
  const server = process.env.POSTGRES_URL ? undefined : await PostgresServer.start();
  const postgresUrl = process.env.POSTGRES_URL ?? server!.url;
  const keyPrefix = `${context.keyPrefix}postgres:`;
  try {
    const silent = await silentHits(context, postgresUrl, keyPrefix);
    const storms = await duplicateStorms(context, postgresUrl, keyPrefix);
    const sizes = [...new Set(storms.map((row) => row.k))];
    return {
      id: 'postgres',
      title: `9. PostgreSQL beside Redis (silent hit; duplicate storm over ${PROCESSES} processes, token endpoint ${TOKEN_LATENCY_MS} ms)`,
      tables: [
        {
          headers: ['silent hit', 'p50', 'p99', 'p50 / Redis L1 off'],
          rows: silent.variants.map((variant) => [
            variant.name,
            spread(variant.p50),
            spread(variant.p99),
            ratio(variant.p50.median / silent.variants[1]!.p50.median),
          ]),
        },
        {
          headers: [
            'storm',
            'K',
            'token calls',
            'successes',
            'winner latency',
            'dup - winner p50',
            'dup - winner p99',
            'worst dup - winner',
          ],
          rows: storms.map((row) => [
            row.store,
            String(row.k),
            row.runs.map((run) => run.tokenCalls).join(','),
            row.runs.map((run) => run.successes).join(','),
            spread(row.winnerLatency),
            spread(row.deltaP50),
            spread(row.deltaP99),
            ms(Math.max(...row.runs.map((run) => run.deltaMaxMs))),
          ]),
        },
      ],
      goals: sizes.flatMap((k) => {
        const row = storms.find((each) => each.store === 'PostgreSQL' && each.k === k)!;
        return [
          {
            benchmark: '9. postgres',
            goal: `PostgreSQL storm K=${k}: token-endpoint calls = 1`,
            measured: `${Math.max(...row.runs.map((run) => run.tokenCalls))} at most, in ${row.runs.length} runs`,
            met: row.runs.every((run) => run.tokenCalls === 1),
          },
          {
            benchmark: '9. postgres',
            goal: `PostgreSQL storm K=${k}: successes = ${k}`,
            measured: `${Math.min(...row.runs.map((run) => run.successes))} at least, in ${row.runs.length} runs`,
            met: row.runs.every((run) => run.successes === k),
          },
        ];
      }),
      notes: [
        `silent hit: ${silent.runs} rounds x ${silent.callsPerRun} sequential calls per variant (after ${silent.warmup} warm-up calls), the order rotated each round; figures are the median of the rounds' p50/p99 (min–max). Token-endpoint calls while measuring: ${silent.tokenCalls}.`,
        'PostgreSQL has no L1 (only Redis tells a process that another instance wrote a partition): every hit reads the partition with one primary-key SELECT.',
        `storms: after warm-up storms in every process set, ${storms[0]?.runs.length ?? 0} storms per K and store, PostgreSQL and Redis alternated; each storm a fresh code, every call starting at the same wall-clock instant.`,
        `PostgreSQL ${server ? 'started by the bench (PostgresServer: fsync off, loopback)' : 'at POSTGRES_URL'}.`,
        ...storms.filter((row) => row.errors.length).map((row) => `${row.store} K=${row.k} errors: ${row.errors.join('; ')}`),
      ],
      data: { processes: PROCESSES, tokenLatencyMs: TOKEN_LATENCY_MS, silent, storms },
    };
  } finally {
    await server?.stop();
  }
}

async function silentHits(context: BenchContext, postgresUrl: string, keyPrefix: string) {
  const { entra, redisUrl, quick } = context;
  const runs = quick ? 3 : 5;
  const callsPerRun = quick ? 200 : 1000;
  const warmup = quick ? 50 : 200;
  const config = entra.msalConfig();
  const user = newUser('Postgres Silent User');
  const caches = {
    'ours, Redis, L1 (default options)': new DistributedTokenCache(
      l1Options({ store: new Keyv({ store: new KeyvRedis(redisUrl) }), keyPrefix }, 'default'),
    ),
    'ours, Redis, L1 off (l1: false)': new DistributedTokenCache(
      l1Options({ store: new Keyv({ store: new KeyvRedis(redisUrl) }), keyPrefix }, 'off'),
    ),
    'ours, PostgreSQL (@keyv/postgres; no L1)': new DistributedTokenCache({
      // idleTimeoutMillis: 1, the workaround of docs/postgres.md ("Restarts and failovers"):
      // @keyv/postgres's pool has no 'error' listener, and stopping the server at the end while its
      // idle client is open ended this process (seen in a --quick run).
      store: new Keyv({ store: new KeyvPostgres({ uri: postgresUrl, idleTimeoutMillis: 1 }) }),
      keyPrefix,
    }),
  };
  try {
    const variants: { name: string; call: () => Promise<unknown> }[] = [];
    for (const [name, cache] of Object.entries(caches)) {
      const app = new DistributedClientApplication(config, { cache });
      const homeAccountId = (await app.acquireTokenByCode(codeRequest(mintSignIn(entra, user)))).account!.homeAccountId;
      variants.push({ name, call: () => app.acquireTokenSilent({ homeAccountId, scopes: SCOPES }) });
    }
    for (const variant of variants) {
      if (!((await variant.call()) as { fromCache?: boolean }).fromCache) throw new Error(`${variant.name}: not a cache hit`);
      await timeSequential(warmup, variant.call);
    }
    const tokenCallsBefore = entra.tokenCallCount();
    const perRun = variants.map(() => ({ p50: [] as number[], p99: [] as number[] }));
    for (let run = 0; run < runs; run++) {
      for (let offset = 0; offset < variants.length; offset++) {
        const index = (run + offset) % variants.length;
        const latency = latencyOf(await timeSequential(callsPerRun, variants[index]!.call));
        perRun[index]!.p50.push(latency.p50);
        perRun[index]!.p99.push(latency.p99);
      }
      context.log(`postgres: silent round ${run + 1}/${runs} done`);
    }
    return {
      runs,
      callsPerRun,
      warmup,
      tokenCalls: entra.tokenCallCount() - tokenCallsBefore,
      variants: variants.map((variant, index) => ({
        name: variant.name,
        p50: figure(perRun[index]!.p50),
        p99: figure(perRun[index]!.p99),
      })),
    };
  } finally {
    await Promise.all(Object.values(caches).map((cache) => cache.close()));
  }
}

interface StormRow {
  store: 'PostgreSQL' | 'Redis';
  k: number;
  runs: StormRun[];
  winnerLatency: Figure;
  deltaP50: Figure;
  deltaP99: Figure;
  errors: string[];
}

async function duplicateStorms(context: BenchContext, postgresUrl: string, keyPrefix: string): Promise<StormRow[]> {
  const { entra, quick } = context;
  const runs = quick ? 3 : 5;
  const sizes = [10, 50];
  const start = (env: NodeJS.ProcessEnv): Promise<WorkerProcess[]> =>
    Promise.all(Array.from({ length: PROCESSES }, () => WorkerProcess.start('storm-worker.ts', env)));
  const fleets = {
    PostgreSQL: await start({ ...workerEnv(context, `${keyPrefix}storm:`), POSTGRES_URL: postgresUrl, REDIS_URL: undefined }),
    Redis: await start(workerEnv(context, `${keyPrefix}redis-storm:`)),
  } as const;
  const previousLatency = entra.tokenLatencyMs;
  entra.tokenLatencyMs = TOKEN_LATENCY_MS;
  try {
    for (const workers of Object.values(fleets)) {
      await Promise.all(workers.map((worker) => worker.call('warmUp')));
      for (let warm = 0; warm < 3; warm++) await stormOnce(entra, workers, 8);
    }
    const measured = new Map<string, StormRun[]>();
    for (const k of sizes) {
      for (let run = 0; run < runs; run++) {
        for (const [store, workers] of Object.entries(fleets)) {
          const key = `${store}:${k}`;
          measured.set(key, [...(measured.get(key) ?? []), await stormOnce(entra, workers, k)]);
        }
      }
      context.log(`postgres: storms K=${k} done`);
    }
    return sizes.flatMap((k) =>
      (Object.keys(fleets) as (keyof typeof fleets)[]).map((store) => {
        const list = measured.get(`${store}:${k}`)!;
        return {
          store,
          k,
          runs: list,
          winnerLatency: figure(list.map((run) => run.winnerLatencyMs)),
          deltaP50: figure(list.map((run) => run.deltaP50Ms)),
          deltaP99: figure(list.map((run) => run.deltaP99Ms)),
          errors: [...new Set(list.flatMap((run) => run.errors))],
        };
      }),
    );
  } finally {
    entra.tokenLatencyMs = previousLatency;
    await Promise.all(Object.values(fleets).flatMap((workers) => workers.map((worker) => worker.stop())));
  }
}
