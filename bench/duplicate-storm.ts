// Benchmark 2: K duplicate callbacks of one authorization code, spread over 4 OS processes that
// share Redis (token store and RedisLockStore). Counts token-endpoint calls and successes, and how
// much later than the winner (the caller that redeemed the code) each duplicate got its answer.
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, workerEnv } from './lib/context';
import type { BenchmarkResult } from './lib/report';
import { figure, ms, percentile, spread } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';

const PROCESSES = 4;
const TOKEN_LATENCY_MS = 50;
/** Lead time for the start barrier: every process starts its share of calls at the same wall-clock time. */
const START_LEAD_MS = 150;

interface CallReport {
  ok: boolean;
  startedAt: number;
  endedAt: number;
  homeAccountId?: string;
  error?: string;
}

interface StormReply {
  calls: CallReport[];
  events: { redeemed: number; joined: number; waited: number; answered: number };
}

export interface StormRun {
  k: number;
  tokenCalls: number;
  successes: number;
  winnerLatencyMs: number;
  /** Each duplicate's latency minus the winner's (all calls start at the same instant). */
  deltaP50Ms: number;
  deltaP99Ms: number;
  deltaMaxMs: number;
  startSkewMs: number;
  waitedProcesses: number[];
  errors: string[];
}

/**
 * One storm: `k` duplicates of a fresh code over `processes` (storm workers), all starting at the
 * same wall-clock instant; what came of it.
 */
export async function stormOnce(entra: BenchContext['entra'], processes: WorkerProcess[], k: number): Promise<StormRun> {
  const signIn = mintSignIn(entra);
  const request = codeRequest(signIn);
  const startAt = Date.now() + START_LEAD_MS;
  const replies = await Promise.all(
    processes.map((worker, index) =>
      worker.call<StormReply>('storm', {
        request,
        count: Math.floor(k / processes.length) + (index < k % processes.length ? 1 : 0),
        startAt,
      }),
    ),
  );
  const winnerProcess = replies.findIndex((reply) => reply.events.redeemed > 0);
  const calls = replies.flatMap((reply) => reply.calls);
  const winner = winnerProcess >= 0 ? replies[winnerProcess]!.calls[0]! : undefined;
  const winnerLatency = winner ? winner.endedAt - startAt : NaN;
  const deltas = calls.filter((call) => call !== winner).map((call) => call.endedAt - startAt - winnerLatency);
  return {
    k,
    tokenCalls: entra.tokenCallCount({ code: signIn.code }),
    successes: calls.filter((call) => call.ok && call.homeAccountId === signIn.homeAccountId).length,
    winnerLatencyMs: winnerLatency,
    deltaP50Ms: percentile(deltas, 50),
    deltaP99Ms: percentile(deltas, 99),
    deltaMaxMs: Math.max(...deltas),
    startSkewMs: Math.max(...calls.map((call) => call.startedAt)) - Math.min(...calls.map((call) => call.startedAt)),
    waitedProcesses: replies.map((reply) => reply.events.waited),
    errors: [...new Set(calls.filter((call) => !call.ok).map((call) => call.error ?? 'unknown'))],
  };
}

export async function duplicateStorm(context: BenchContext): Promise<BenchmarkResult> {
  const { entra, quick } = context;
  const runs = quick ? 3 : 5;
  const sizes = [10, 50];
  const keyPrefix = `${context.keyPrefix}storm:`;
  const startWorkers = (): Promise<WorkerProcess[]> =>
    Promise.all(Array.from({ length: PROCESSES }, () => WorkerProcess.start('storm-worker.ts', workerEnv(context, keyPrefix))));
  const workers = await startWorkers();
  const warmedUpWorkers: WorkerProcess[] = [];
  const previousLatency = entra.tokenLatencyMs;
  entra.tokenLatencyMs = TOKEN_LATENCY_MS;

  const storm = (k: number, processes = workers): Promise<StormRun> => stormOnce(entra, processes, k);

  try {
    // The first storm in fresh processes: nobody has subscribed to the lock channel yet.
    const cold = await storm(10);
    // Warm up until every process has waited once (its RedisLockStore subscribes on the first wait).
    const waitedOnce = new Set<number>();
    for (let attempt = 0; attempt < 10 && waitedOnce.size < PROCESSES; attempt++) {
      (await storm(8)).waitedProcesses.forEach((waited, index) => waited > 0 && waitedOnce.add(index));
    }
    cold.waitedProcesses.forEach((waited, index) => waited > 0 && waitedOnce.add(index));
    const measured = new Map<number, StormRun[]>();
    for (const k of sizes) {
      const list: StormRun[] = [];
      for (let run = 0; run < runs; run++) list.push(await storm(k));
      measured.set(k, list);
      context.log(`storm: K=${k} done`);
    }
    const states = await Promise.all(workers.map((worker) => worker.call<{ redemptionsInFlight: number; waitingKeys: number }>('state')));
    // The first storm again in fresh processes, this time after each ran app.warmUp() at start-up.
    warmedUpWorkers.push(...(await startWorkers()));
    await Promise.all(warmedUpWorkers.map((worker) => worker.call('warmUp')));
    const coldAfterWarmUp = await storm(10, warmedUpWorkers);

    const rows = sizes.map((k) => {
      const list = measured.get(k)!;
      return {
        k,
        tokenCallsMax: Math.max(...list.map((run) => run.tokenCalls)),
        tokenCalls: list.map((run) => run.tokenCalls),
        successesMin: Math.min(...list.map((run) => run.successes)),
        successes: list.map((run) => run.successes),
        winnerLatency: figure(list.map((run) => run.winnerLatencyMs)),
        deltaP50: figure(list.map((run) => run.deltaP50Ms)),
        deltaP99: figure(list.map((run) => run.deltaP99Ms)),
        deltaMax: Math.max(...list.map((run) => run.deltaMaxMs)),
        startSkew: figure(list.map((run) => run.startSkewMs)),
        errors: [...new Set(list.flatMap((run) => run.errors))],
      };
    });
    const idle = states.every((state) => state.redemptionsInFlight === 0 && state.waitingKeys === 0);

    return {
      id: 'duplicateStorm',
      title: `2. Duplicate storm (K duplicates of one code over ${PROCESSES} processes, token endpoint latency ${TOKEN_LATENCY_MS} ms)`,
      tables: [
        {
          headers: [
            'K',
            'token calls',
            'successes',
            'winner latency',
            'dup - winner p50',
            'dup - winner p99',
            'worst dup - winner',
            'start skew',
          ],
          rows: [
            ...rows.map((row) => [
              String(row.k),
              row.tokenCalls.join(','),
              row.successes.join(','),
              spread(row.winnerLatency),
              spread(row.deltaP50),
              spread(row.deltaP99),
              ms(row.deltaMax),
              spread(row.startSkew),
            ]),
            ...[
              ['10 (cold: first storm)', cold],
              ['10 (cold, after warmUp())', coldAfterWarmUp],
            ].map(([label, run]) => {
              const first = run as StormRun;
              return [
                label as string,
                String(first.tokenCalls),
                String(first.successes),
                ms(first.winnerLatencyMs),
                ms(first.deltaP50Ms),
                ms(first.deltaP99Ms),
                ms(first.deltaMaxMs),
                ms(first.startSkewMs),
              ];
            }),
          ],
        },
      ],
      goals: rows.flatMap((row) => [
        {
          benchmark: '2. duplicate storm',
          goal: `K=${row.k}: token-endpoint calls = 1`,
          measured: `${row.tokenCallsMax} at most, in ${runs} runs`,
          met: row.tokenCalls.every((calls) => calls === 1),
        },
        {
          benchmark: '2. duplicate storm',
          goal: `K=${row.k}: successes = ${row.k}`,
          measured: `${row.successesMin} at least, in ${runs} runs`,
          met: row.successes.every((successes) => successes === row.k),
        },
        {
          benchmark: '2. duplicate storm',
          goal: `K=${row.k}: p99(duplicate - winner latency) <= 25 ms`,
          measured: spread(row.deltaP99),
          met: row.deltaP99.median <= 25,
        },
      ]),
      notes: [
        `${runs} storms per K, each with a fresh code; figures are the median of the storms (min–max). Every call starts at the same wall-clock instant (start skew = spread of the actual starts).`,
        `winner = the call that sent the code to the token endpoint; "dup - winner" = a duplicate's latency minus the winner's. Token endpoint latency injected: ${TOKEN_LATENCY_MS} ms (entra.tokenLatencyMs).`,
        `cold storm = the first storm in fresh processes: every process pays its first-use costs (Redis connections, JIT, and for the duplicates' processes the OpenID configuration fetch before their first silent call). Measured storms run after every process has waited once. "cold, after warmUp()" = the first storm in 4 other fresh processes that each called app.warmUp() at start-up.`,
        `in-process state after the storms: ${idle ? 'redemptionsInFlight = 0 and waitingKeys = 0 in every process' : JSON.stringify(states)}.`,
        ...rows.filter((row) => row.errors.length).map((row) => `K=${row.k} errors: ${row.errors.join('; ')}`),
        ...(cold.errors.length ? [`cold storm errors: ${cold.errors.join('; ')}`] : []),
        ...(coldAfterWarmUp.errors.length ? [`cold storm after warmUp() errors: ${coldAfterWarmUp.errors.join('; ')}`] : []),
      ],
      data: { processes: PROCESSES, tokenLatencyMs: TOKEN_LATENCY_MS, runs, sizes: rows, cold, coldAfterWarmUp, workerStatesAfter: states },
    };
  } finally {
    entra.tokenLatencyMs = previousLatency;
    await Promise.all([...workers, ...warmedUpWorkers].map((worker) => worker.stop()));
  }
}
