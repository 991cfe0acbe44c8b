// Benchmark 6: coherence delay of the in-process L1. Two OS processes share Redis, each a
// DistributedClientApplication with the default options (L1 on). Per round, the reader fills its L1
// with one account's partition, the writer writes that partition (a forced refresh), and the delay
// is the time from the writer's write resolving (its compare-and-set answered) until the reader's
// L1 dropped its copy (the invalidation event), both on the machine's monotonic clock.
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, workerEnv } from './lib/context';
import type { BenchmarkResult } from './lib/report';
import { ms, percentile } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';

/** How long a round waits for the reader's invalidation before it counts as missing. */
const DROP_TIMEOUT_MS = 2000;
/** Reads per round until the reader's hit comes from its L1 (the first one after a drop reads Redis). */
const MAX_FILL_READS = 5;

export async function coherence(context: BenchContext): Promise<BenchmarkResult> {
  const { entra, quick } = context;
  const writes = quick ? 200 : 1000;
  const keyPrefix = `${context.keyPrefix}coherence:`;
  const env = workerEnv(context, keyPrefix);
  const [writer, reader] = await Promise.all([WorkerProcess.start('l1-worker.ts', env), WorkerProcess.start('l1-worker.ts', env)]);
  const delaysMs: number[] = [];
  const reasons: Record<string, number> = {};
  let missing = 0;
  let unavailable: string | undefined;
  const tokenCallsBefore = entra.tokenCallCount();
  try {
    const { homeAccountId, partitionHash } = await writer.call<{ homeAccountId: string; partitionHash: string }>('signIn', {
      request: codeRequest(mintSignIn(entra)),
    });
    for (let round = 0; round < writes && unavailable === undefined; round++) {
      let level: string | null = null;
      for (let read = 0; read < MAX_FILL_READS && level !== 'l1'; read++) {
        ({ level } = await reader.call<{ level: string | null }>('read', { homeAccountId }));
      }
      if (level !== 'l1') {
        unavailable =
          level === null
            ? 'no cache:hit reports a level: this build has no L1'
            : `the reader's hits kept coming from ${level} after ${MAX_FILL_READS} reads (is tracking on?)`;
        break;
      }
      await reader.call('expect', { partitionHash });
      const { at: writtenAt } = await writer.call<{ at: string }>('write', { homeAccountId });
      const drop = await reader.call<{ at: string; reason: string } | null>('dropped', { partitionHash, timeoutMs: DROP_TIMEOUT_MS });
      if (!drop) {
        missing++;
        if (round === 0) unavailable = `no invalidation event within ${DROP_TIMEOUT_MS} ms of the first write`;
        continue;
      }
      reasons[drop.reason] = (reasons[drop.reason] ?? 0) + 1;
      delaysMs.push(Number(BigInt(drop.at) - BigInt(writtenAt)) / 1e6);
      if ((round + 1) % 250 === 0) context.log(`coherence: ${round + 1}/${writes} writes`);
    }
  } finally {
    await Promise.all([writer.stop(), reader.stop()]);
  }
  const tokenCalls = entra.tokenCallCount() - tokenCallsBefore;
  const p50 = percentile(delaysMs, 50);
  const p99 = percentile(delaysMs, 99);
  const measured = delaysMs.length > 0;
  const early = delaysMs.filter((delay) => delay <= 0).length / delaysMs.length;

  return {
    id: 'coherence',
    title: `6. L1 coherence delay (2 processes, ${writes.toLocaleString('en-US')} writes)`,
    tables: [
      {
        headers: ['writes', 'drops seen', 'missing', 'delay p50', 'p99', 'min', 'max', 'dropped before the write resolved', 'drop reasons'],
        rows: [
          [
            String(writes),
            String(delaysMs.length),
            String(missing),
            ms(p50),
            ms(p99),
            ms(Math.min(...delaysMs)),
            ms(Math.max(...delaysMs)),
            measured ? `${(early * 100).toFixed(1)} %` : 'n/a',
            JSON.stringify(reasons),
          ],
        ],
      },
    ],
    goals: [
      {
        benchmark: '6. coherence',
        goal: `time from a write resolving on one process until another process's L1 dropped its copy, p50/p99 over ${writes.toLocaleString('en-US')} writes (reported)`,
        measured: measured
          ? `p50 ${ms(p50)}, p99 ${ms(p99)}; ${(early * 100).toFixed(1)} % dropped before the write resolved; ${missing} drops missing`
          : `not measured: ${unavailable ?? 'no drop seen'}`,
        met: measured && missing === 0 && unavailable === undefined,
      },
    ],
    notes: [
      `per round: the reader reads until its hit comes from its L1 (level 'l1'), the writer forces a refresh of the same account (a token request and a compare-and-set), and the reader's invalidation event ends the round; delay = the reader's event minus the writer's cache:write event, both on process.hrtime (the machine's monotonic clock, shared by its processes). Redis sends the invalidation while it runs the write, so a drop can come before the writer has its answer: such a delay is negative.`,
      `a round counts as missing when no invalidation came within ${DROP_TIMEOUT_MS} ms; ${tokenCalls} token-endpoint calls (one sign-in, one refresh per write).`,
      ...(unavailable ? [`stopped: ${unavailable}.`] : []),
    ],
    data: {
      writes,
      delaysMs: summary(delaysMs),
      droppedBeforeWriteResolved: measured ? early : null,
      missing,
      reasons,
      unavailable: unavailable ?? null,
      tokenCalls,
    },
  };
}

/** Percentiles of the delays (the raw list would make latest.json long). */
function summary(values: number[]): Record<string, number> | null {
  if (values.length === 0) return null;
  return Object.fromEntries([0, 1, 10, 25, 50, 75, 90, 99, 100].map((p) => [`p${p}`, percentile(values, p)]));
}
