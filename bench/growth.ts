// Benchmark 4: does a silent call get slower, or the process heavier, as accounts accumulate?
// Ours keeps accounts in Redis (one partition each); a plain MSAL singleton keeps them all in its
// in-memory cache. Both processes hold the same users at 100, 1,000 and 10,000 accounts.
import type { AccountInfo } from '@azure/msal-node';
import type { FakeUser } from '../src/testing';
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, newUser, workerEnv } from './lib/context';
import type { BenchmarkResult } from './lib/report';
import { figure, mb, ratio, spread } from './lib/stats';
import type { Figure, RunLatency } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';

const SIGN_IN_CONCURRENCY = 50;
const CHUNK = 500;

type Variant = 'ours' | 'account' | 'homeAccountId';
const VARIANT_NAMES: Record<Variant, string> = {
  ours: 'ours, Redis: acquireTokenSilent({ homeAccountId })',
  account: 'plain singleton: acquireTokenSilent({ account })',
  homeAccountId: 'plain singleton: getAccountByHomeId + acquireTokenSilent',
};

const VARIANTS = Object.keys(VARIANT_NAMES) as Variant[];

interface Level {
  accounts: number;
  p50: Partial<Record<Variant, Figure>>;
  p99: Partial<Record<Variant, Figure>>;
  /** Calls per run of each variant. */
  calls: Partial<Record<Variant, number>>;
  heapUsed: { ours: number; plain: number };
  signInSeconds: { ours: number; plain: number };
}

export async function growth(context: BenchContext): Promise<BenchmarkResult> {
  const { entra, quick } = context;
  const levels = quick ? [100, 1000] : [100, 1000, 10_000];
  const runs = quick ? 3 : 5;
  const callsPerRun = quick ? 150 : 400;
  /** Time budget of one run of one variant; slow variants get fewer calls. */
  const runBudgetMs = quick ? 300 : 1500;
  /** A variant whose single call is predicted to take longer is skipped at that level. */
  const maxCallMs = quick ? 500 : 3000;
  const skipped: string[] = [];
  const keyPrefix = `${context.keyPrefix}growth:`;
  const env = workerEnv(context, keyPrefix);
  const [ours, plain] = await Promise.all([
    WorkerProcess.start('growth-worker.ts', { ...env, MODE: 'ours' }, ['--expose-gc']),
    WorkerProcess.start('growth-worker.ts', { ...env, MODE: 'plain' }, ['--expose-gc']),
  ]);
  const users: FakeUser[] = [];
  /** The plain app's AccountInfo of every signed-in user (what an app keeps in its session). */
  const accountInfos: AccountInfo[] = [];
  const results: Level[] = [];

  const signIn = async (worker: WorkerProcess, batch: FakeUser[]): Promise<void> => {
    for (let start = 0; start < batch.length; start += CHUNK) {
      const requests = batch.slice(start, start + CHUNK).map((user) => codeRequest(mintSignIn(entra, user)));
      const reply = await worker.call<{ failed: number; firstError?: string; accounts?: AccountInfo[] }>('signIn', {
        requests,
        concurrency: SIGN_IN_CONCURRENCY,
      });
      if (reply.failed) throw new Error(`${reply.failed} sign-ins failed: ${reply.firstError}`);
      accountInfos.push(...(reply.accounts ?? []));
    }
  };
  const sample = (count: number): AccountInfo[] =>
    Array.from({ length: count }, () => accountInfos[Math.floor(Math.random() * accountInfos.length)]!);

  try {
    for (const accounts of levels) {
      const batch = Array.from({ length: accounts - users.length }, () => newUser('Growth User'));
      users.push(...batch);
      let started = performance.now();
      await signIn(ours, batch);
      const oursSeconds = (performance.now() - started) / 1000;
      started = performance.now();
      await signIn(plain, batch);
      const { accounts: plainAccounts } = await plain.call<{ accounts: number }>('commit');
      const plainSeconds = (performance.now() - started) / 1000;
      if (plainAccounts !== accounts || accountInfos.length !== accounts)
        throw new Error(`the plain singleton holds ${plainAccounts} accounts, expected ${accounts}`);
      context.log(`growth: ${accounts} accounts signed in (ours ${oursSeconds.toFixed(1)} s, plain ${plainSeconds.toFixed(1)} s)`);

      // Calls per run follow each variant's cost: the plain lookups grow with the number of
      // accounts, so they get fewer calls (at least one per run), or none when one call would
      // take longer than maxCallMs (predicted from the previous level, assuming O(n^2)).
      const previous = results[results.length - 1];
      const perRun = new Map<Variant, RunLatency[]>();
      const callsOf = new Map<Variant, number>();
      for (const variant of VARIANTS) {
        const worker = variant === 'ours' ? ours : plain;
        const previousP50 = previous?.p50[variant]?.median;
        const predicted = previous && previousP50 !== undefined ? previousP50 * (accounts / previous.accounts) ** 2 : 1;
        if (previous && (previousP50 === undefined || predicted > maxCallMs)) {
          skipped.push(
            `${VARIANT_NAMES[variant]} at ${accounts.toLocaleString('en-US')} accounts: skipped (one call predicted to take ~${(predicted / 1000).toFixed(0)} s)`,
          );
          continue;
        }
        const warm = await worker.call<RunLatency>('silent', {
          accounts: sample(Math.max(1, Math.min(30, Math.floor(1000 / predicted)))),
          variant,
        });
        callsOf.set(variant, Math.max(1, Math.min(callsPerRun, Math.floor(runBudgetMs / warm.mean))));
        perRun.set(variant, []);
      }
      // Interleave the variants run by run.
      for (let run = 0; run < runs; run++) {
        for (const [variant, calls] of callsOf) {
          const worker = variant === 'ours' ? ours : plain;
          perRun.get(variant)!.push(await worker.call<RunLatency>('silent', { accounts: sample(calls), variant }));
        }
      }
      const [oursHeap, plainHeap] = [await ours.call<{ heapUsed: number }>('heap'), await plain.call<{ heapUsed: number }>('heap')];
      const pick = (key: 'p50' | 'p99'): Partial<Record<Variant, Figure>> =>
        Object.fromEntries([...perRun].map(([variant, list]) => [variant, figure(list.map((latency) => latency[key]))]));
      results.push({
        accounts,
        p50: pick('p50'),
        p99: pick('p99'),
        calls: Object.fromEntries(callsOf),
        heapUsed: { ours: oursHeap.heapUsed, plain: plainHeap.heapUsed },
        signInSeconds: { ours: oursSeconds, plain: plainSeconds },
      });
      context.log(`growth: ${accounts} accounts measured`);
    }
  } finally {
    await Promise.all([ours.stop(), plain.stop()]);
  }

  const first = results[0]!;
  const last = results[results.length - 1]!;
  const growthOf = (variant: Variant): number => (last.p50[variant]?.median ?? NaN) / (first.p50[variant]?.median ?? NaN);
  const cell = (level: Level, variant: Variant): string =>
    level.p50[variant] ? `${spread(level.p50[variant])}, p99 ${spread(level.p99[variant]!).split(' (')[0]}` : 'skipped';

  return {
    id: 'growth',
    title: `4. Growth (acquireTokenSilent p50 and heap with ${levels.map((level) => level.toLocaleString('en-US')).join(' / ')} accounts)`,
    tables: [
      {
        title: 'acquireTokenSilent p50 median of runs (min–max), p99',
        headers: [
          'variant',
          ...results.map((level) => `${level.accounts.toLocaleString('en-US')} accounts`),
          `${last.accounts}/${first.accounts}`,
        ],
        rows: VARIANTS.map((variant) => [
          VARIANT_NAMES[variant],
          ...results.map((level) => cell(level, variant)),
          ratio(growthOf(variant)),
        ]),
      },
      {
        title: 'heapUsed after gc',
        headers: [
          'process',
          ...results.map((level) => `${level.accounts.toLocaleString('en-US')} accounts`),
          `${last.accounts}/${first.accounts}`,
        ],
        rows: (['ours', 'plain'] as const).map((side) => [
          side === 'ours' ? 'ours (tokens in Redis)' : 'plain singleton (tokens in its heap)',
          ...results.map((level) => mb(level.heapUsed[side])),
          ratio(last.heapUsed[side] / first.heapUsed[side]),
        ]),
      },
    ],
    goals: [
      {
        benchmark: '4. growth',
        goal: `ours flat: p50 at ${last.accounts.toLocaleString('en-US')} accounts <= 1.2x p50 at ${first.accounts}`,
        measured: `${ratio(growthOf('ours'))} (${spread(first.p50.ours!)} -> ${spread(last.p50.ours!)})`,
        met: growthOf('ours') <= 1.2,
      },
      {
        benchmark: '4. growth',
        goal: `ours flat: heap at ${last.accounts.toLocaleString('en-US')} accounts <= 1.2x heap at ${first.accounts}`,
        measured: `${ratio(last.heapUsed.ours / first.heapUsed.ours)} (${mb(first.heapUsed.ours)} -> ${mb(last.heapUsed.ours)})`,
        met: last.heapUsed.ours / first.heapUsed.ours <= 1.2,
      },
    ],
    notes: [
      `each level: ${runs} runs of up to ${callsPerRun} sequential silent calls on random signed-in accounts (slow variants: as many as fit in ${runBudgetMs} ms, at least one; calls per run: ${results.map((level) => `${level.accounts}: ${JSON.stringify(level.calls)}`).join('; ')}), in separate processes started with --expose-gc; heap = process.memoryUsage().heapUsed after gc.`,
      ...skipped,
      `sign-ins go through the fake's token endpoint (mintCode + acquireTokenByCode, ${SIGN_IN_CONCURRENCY} at a time). Ours: DistributedClientApplication, one partition per account in Redis, locks in a RedisLockStore (with the default MemoryLockStore the heap would also hold each sign-in's claim record for 15 minutes, about 1.1 KB each: see benchmark 5). Plain: each code is redeemed by a short-lived loader client and the caches are merged into the singleton with one deserialize per level, because a singleton redeeming 10,000 codes itself slows down as it fills (see benchmark 3); it ends up holding the same entities.`,
      `sign-in time per level (s): ${results.map((level) => `${level.accounts}: ours ${level.signInSeconds.ours.toFixed(1)}, plain ${level.signInSeconds.plain.toFixed(1)}`).join('; ')}.`,
    ],
    data: { levels: results, runs, callsPerRun, runBudgetMs, skipped, signInConcurrency: SIGN_IN_CONCURRENCY },
  };
}
