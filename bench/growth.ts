// Benchmark 4: does a silent call get slower, or the process heavier, as accounts accumulate?
// Ours keeps accounts in Redis (one partition each) and, with the default options, the partitions
// it has seen in its in-process L1 (up to its bound: filled before measuring, "L1 full"); a second
// process of ours runs with `l1: false`; a plain MSAL singleton keeps them all in its in-memory
// cache. The processes hold the same users at 100, 1,000 and 10,000 accounts.
import type { AccountInfo } from '@azure/msal-node';
import type { FakeUser } from '../src/testing';
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, newUser, workerEnv } from './lib/context';
import type { BenchmarkResult } from './lib/report';
import { figure, mb, ratio, spread } from './lib/stats';
import type { Figure, RunLatency } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';
import { L1_DEFAULT_MAX_BYTES, L1_DEFAULT_MAX_ENTRIES, percent } from './lib/l1';

const SIGN_IN_CONCURRENCY = 50;
const FILL_CONCURRENCY = 20;
const CHUNK = 500;

type Variant = 'ours' | 'oursL1Off' | 'account' | 'homeAccountId';
const VARIANT_NAMES: Record<Variant, string> = {
  ours: 'ours, Redis, L1 full (default options): acquireTokenSilent({ homeAccountId })',
  oursL1Off: 'ours, Redis, l1: false: acquireTokenSilent({ homeAccountId })',
  account: 'plain singleton: acquireTokenSilent({ account })',
  homeAccountId: 'plain singleton: getAccountByHomeId + acquireTokenSilent',
};
type Side = 'ours' | 'oursL1Off' | 'plain';
const SIDE_NAMES: Record<Side, string> = {
  ours: 'ours, L1 full (tokens in Redis, seen partitions in the L1)',
  oursL1Off: 'ours, l1: false (tokens in Redis)',
  plain: 'plain singleton (tokens in its heap)',
};
type Levels = { l1: number; store: number; unknown: number };

const VARIANTS = Object.keys(VARIANT_NAMES) as Variant[];

interface Level {
  accounts: number;
  p50: Partial<Record<Variant, Figure>>;
  p99: Partial<Record<Variant, Figure>>;
  /** Calls per run of each variant. */
  calls: Partial<Record<Variant, number>>;
  heapUsed: Record<Side, number>;
  signInSeconds: { ours: number; plain: number };
  /** Ours (L1 on): hits by level while filling the L1 with this level's new accounts, and while measuring. */
  fillLevels: Levels | null;
  measureLevels: Levels | null;
}

const l1RateOf = (levels: Levels | null): number => (levels ? levels.l1 / (levels.l1 + levels.store + levels.unknown) : NaN);

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
  const [ours, oursL1Off, plain] = await Promise.all([
    WorkerProcess.start('growth-worker.ts', { ...env, MODE: 'ours' }, ['--expose-gc']),
    // Its own partitions (the same users, signed in again), so that both processes of ours do the same work.
    WorkerProcess.start('growth-worker.ts', { ...env, KEY_PREFIX: `${keyPrefix}l1-off:`, MODE: 'ours-l1-off' }, ['--expose-gc']),
    WorkerProcess.start('growth-worker.ts', { ...env, MODE: 'plain' }, ['--expose-gc']),
  ]);
  const workerOf = (variant: Variant): WorkerProcess => (variant === 'ours' ? ours : variant === 'oursL1Off' ? oursL1Off : plain);
  const users: FakeUser[] = [];
  /** The plain app's AccountInfo of every signed-in user (what an app keeps in its session). */
  const accountInfos: AccountInfo[] = [];
  const results: Level[] = [];
  /** Ours: the homeAccountId of every account signed in, in order. */
  const homeAccountIds: string[] = [];

  const signIn = async (worker: WorkerProcess, batch: FakeUser[]): Promise<void> => {
    for (let start = 0; start < batch.length; start += CHUNK) {
      const signIns = batch.slice(start, start + CHUNK).map((user) => mintSignIn(entra, user));
      if (worker === ours) homeAccountIds.push(...signIns.map((one) => one.homeAccountId));
      const requests = signIns.map(codeRequest);
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
      await signIn(oursL1Off, batch);
      started = performance.now();
      await signIn(plain, batch);
      const { accounts: plainAccounts } = await plain.call<{ accounts: number }>('commit');
      const plainSeconds = (performance.now() - started) / 1000;
      if (plainAccounts !== accounts || accountInfos.length !== accounts)
        throw new Error(`the plain singleton holds ${plainAccounts} accounts, expected ${accounts}`);
      context.log(`growth: ${accounts} accounts signed in (ours ${oursSeconds.toFixed(1)} s, plain ${plainSeconds.toFixed(1)} s)`);
      // L1 full: a silent call for each new account puts its partition in ours' L1 (up to the bound).
      const fillLevels = await ours.call<Levels>('fill', {
        homeAccountIds: homeAccountIds.slice(-batch.length),
        concurrency: FILL_CONCURRENCY,
      });

      // Calls per run follow each variant's cost: the plain lookups grow with the number of
      // accounts, so they get fewer calls (at least one per run), or none when one call would
      // take longer than maxCallMs (predicted from the previous level, assuming O(n^2)).
      const previous = results[results.length - 1];
      const perRun = new Map<Variant, (RunLatency & { levels: Levels | null })[]>();
      const callsOf = new Map<Variant, number>();
      for (const variant of VARIANTS) {
        const worker = workerOf(variant);
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
          perRun.get(variant)!.push(await workerOf(variant).call('silent', { accounts: sample(calls), variant }));
        }
      }
      const heapOf = async (worker: WorkerProcess): Promise<number> => (await worker.call<{ heapUsed: number }>('heap')).heapUsed;
      const heapUsed = { ours: await heapOf(ours), oursL1Off: await heapOf(oursL1Off), plain: await heapOf(plain) };
      const measureLevels = (perRun.get('ours') ?? []).reduce<Levels | null>(
        (sum, run) =>
          run.levels
            ? {
                l1: (sum?.l1 ?? 0) + run.levels.l1,
                store: (sum?.store ?? 0) + run.levels.store,
                unknown: (sum?.unknown ?? 0) + run.levels.unknown,
              }
            : sum,
        null,
      );
      const pick = (key: 'p50' | 'p99'): Partial<Record<Variant, Figure>> =>
        Object.fromEntries([...perRun].map(([variant, list]) => [variant, figure(list.map((latency) => latency[key]))]));
      results.push({
        accounts,
        p50: pick('p50'),
        p99: pick('p99'),
        calls: Object.fromEntries(callsOf),
        heapUsed,
        signInSeconds: { ours: oursSeconds, plain: plainSeconds },
        fillLevels,
        measureLevels,
      });
      context.log(`growth: ${accounts} accounts measured`);
    }
  } finally {
    await Promise.all([ours.stop(), oursL1Off.stop(), plain.stop()]);
  }

  const first = results[0]!;
  const last = results[results.length - 1]!;
  const growthOf = (variant: Variant): number => (last.p50[variant]?.median ?? NaN) / (first.p50[variant]?.median ?? NaN);
  const heapGrowthOf = (side: Side): number => last.heapUsed[side] / first.heapUsed[side];
  const cell = (level: Level, variant: Variant): string =>
    level.p50[variant] ? `${spread(level.p50[variant])}, p99 ${spread(level.p99[variant]!).split(' (')[0]}` : 'skipped';
  const l1Active = results.some((level) => (level.measureLevels?.l1 ?? 0) + (level.fillLevels?.l1 ?? 0) > 0);
  const notActive = 'the L1 is not active in this build (no cache:hit reported level l1): ours and ours with l1: false are the same';
  // The L1's heap: ours minus ours with `l1: false` (the same work, no L1), at the last level.
  const l1Heap = last.heapUsed.ours - last.heapUsed.oursL1Off;
  const atBound = last.accounts >= L1_DEFAULT_MAX_ENTRIES;
  const fmtAccounts = (value: number): string => value.toLocaleString('en-US');

  return {
    id: 'growth',
    title: `4. Growth (acquireTokenSilent p50 and heap with ${levels.map((level) => level.toLocaleString('en-US')).join(' / ')} accounts)`,
    tables: [
      {
        title: 'acquireTokenSilent p50 median of runs (min–max), p99',
        headers: ['variant', ...results.map((level) => `${fmtAccounts(level.accounts)} accounts`), `${last.accounts}/${first.accounts}`],
        rows: VARIANTS.map((variant) => [
          VARIANT_NAMES[variant],
          ...results.map((level) => cell(level, variant)),
          ratio(growthOf(variant)),
        ]),
      },
      {
        title: 'heapUsed after gc',
        headers: ['process', ...results.map((level) => `${fmtAccounts(level.accounts)} accounts`), `${last.accounts}/${first.accounts}`],
        rows: [
          ...(['ours', 'oursL1Off', 'plain'] as const).map((side) => [
            SIDE_NAMES[side],
            ...results.map((level) => mb(level.heapUsed[side])),
            ratio(heapGrowthOf(side)),
          ]),
          ['the L1 (ours - ours with l1: false)', ...results.map((level) => mb(level.heapUsed.ours - level.heapUsed.oursL1Off)), ''],
        ],
      },
      {
        title: 'ours, L1 on: hits by level',
        headers: ['', ...results.map((level) => `${fmtAccounts(level.accounts)} accounts`)],
        rows: [
          ['filling (one silent call per new account)', ...results.map((level) => JSON.stringify(level.fillLevels))],
          ['measuring: L1 hit rate', ...results.map((level) => percent(l1RateOf(level.measureLevels)))],
        ],
      },
    ],
    goals: [
      {
        benchmark: '4. growth',
        goal: `ours, L1 full: p50 at ${fmtAccounts(last.accounts)} accounts <= 1.2x p50 at ${first.accounts}`,
        measured: `${ratio(growthOf('ours'))} (${spread(first.p50.ours!)} -> ${spread(last.p50.ours!)}; L1 hit rate ${percent(l1RateOf(last.measureLevels))})${l1Active ? '' : `; ${notActive}`}`,
        met: l1Active && growthOf('ours') <= 1.2,
      },
      {
        benchmark: '4. growth',
        goal: `ours, L1 full: heap at ${fmtAccounts(last.accounts)} accounts <= 1.2x heap at ${first.accounts}`,
        measured: `${ratio(heapGrowthOf('ours'))} (${mb(first.heapUsed.ours)} -> ${mb(last.heapUsed.ours)})${l1Active ? '' : `; ${notActive}`}`,
        met: l1Active && heapGrowthOf('ours') <= 1.2,
      },
      {
        benchmark: '4. growth',
        goal: `ours, l1: false: p50 at ${fmtAccounts(last.accounts)} accounts <= 1.2x p50 at ${first.accounts}`,
        measured: `${ratio(growthOf('oursL1Off'))} (${spread(first.p50.oursL1Off!)} -> ${spread(last.p50.oursL1Off!)})`,
        met: growthOf('oursL1Off') <= 1.2,
      },
      {
        benchmark: '4. growth',
        goal: `ours, l1: false: heap at ${fmtAccounts(last.accounts)} accounts <= 1.2x heap at ${first.accounts}`,
        measured: `${ratio(heapGrowthOf('oursL1Off'))} (${mb(first.heapUsed.oursL1Off)} -> ${mb(last.heapUsed.oursL1Off)})`,
        met: heapGrowthOf('oursL1Off') <= 1.2,
      },
      {
        benchmark: '4. growth',
        goal: `default L1 bound (${fmtAccounts(L1_DEFAULT_MAX_ENTRIES)} partitions, ${mb(L1_DEFAULT_MAX_BYTES)}): the L1's heap at the bound <= ${mb(L1_DEFAULT_MAX_BYTES)}`,
        measured: !l1Active
          ? notActive
          : `${mb(l1Heap)} with ${fmtAccounts(last.accounts)} partitions seen${atBound ? '' : ` (below the bound of ${fmtAccounts(L1_DEFAULT_MAX_ENTRIES)}: a full run reaches it)`}, ${(l1Heap / Math.min(last.accounts, L1_DEFAULT_MAX_ENTRIES) / 1024).toFixed(2)} KB per partition`,
        met: l1Active && atBound && l1Heap <= L1_DEFAULT_MAX_BYTES,
      },
    ],
    notes: [
      `each level: ${runs} runs of up to ${callsPerRun} sequential silent calls on random signed-in accounts (slow variants: as many as fit in ${runBudgetMs} ms, at least one; calls per run: ${results.map((level) => `${level.accounts}: ${JSON.stringify(level.calls)}`).join('; ')}), in separate processes started with --expose-gc; heap = process.memoryUsage().heapUsed after gc.`,
      ...skipped,
      `sign-ins go through the fake's token endpoint (mintCode + acquireTokenByCode, ${SIGN_IN_CONCURRENCY} at a time). Ours: DistributedClientApplication, one partition per account in Redis, locks in a RedisLockStore (with the default MemoryLockStore the heap would also hold each sign-in's claim record for 15 minutes, about 1.1 KB each: see benchmark 5). Plain: each code is redeemed by a short-lived loader client and the caches are merged into the singleton with one deserialize per level, because a singleton redeeming 10,000 codes itself slows down as it fills (see benchmark 3); it ends up holding the same entities.`,
      `L1 full: after the sign-ins of a level, ours (default options) makes one silent call per new account (${FILL_CONCURRENCY} at a time), so that its L1 holds every partition seen, up to its bound (${fmtAccounts(L1_DEFAULT_MAX_ENTRIES)} partitions or ${mb(L1_DEFAULT_MAX_BYTES)} of estimated heap, least recently used dropped first). A second process of ours with l1: false signs the same users in (to partitions of its own) and makes the same calls: the L1's heap is the difference between the two processes' heaps.`,
      ...(l1Active ? [] : [`${notActive}.`]),
      `sign-in time per level (s): ${results.map((level) => `${level.accounts}: ours ${level.signInSeconds.ours.toFixed(1)}, plain ${level.signInSeconds.plain.toFixed(1)}`).join('; ')}.`,
    ],
    data: {
      levels: results,
      runs,
      callsPerRun,
      runBudgetMs,
      skipped,
      signInConcurrency: SIGN_IN_CONCURRENCY,
      l1Active,
      l1HeapBytesAtLastLevel: l1Heap,
      l1DefaultBound: { maxEntries: L1_DEFAULT_MAX_ENTRIES, maxBytes: L1_DEFAULT_MAX_BYTES },
    },
  };
}
