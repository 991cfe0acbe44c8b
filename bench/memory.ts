// Benchmark 5: what stays in the process after many distinct redemptions. 100,000 codes (one new
// user each) go through acquireTokenByCode, 64 at a time, in a process started with --expose-gc;
// heap and in-process maps are read after gc before and after.
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, workerEnv } from './lib/context';
import type { BenchmarkResult } from './lib/report';
import { mb } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';

const CONCURRENCY = 64;
const BATCH = 2000;

interface Stats {
  heapUsed: number;
  redemptionsInFlight: number;
  waitingKeys: number | null;
  activeKeys: number | null;
}

interface Checkpoint {
  redemptions: number;
  heapUsed: number;
  seconds: number;
}

interface RunResult {
  lockStore: 'redis' | 'memory';
  warmup: number;
  redemptions: number;
  seconds: number;
  perSecond: number;
  failed: number;
  firstError?: string;
  before: Stats;
  after: Stats;
  checkpoints: Checkpoint[];
}

async function redeemMany(context: BenchContext, lockStore: 'redis' | 'memory', total: number, warmup: number): Promise<RunResult> {
  const { entra } = context;
  const env = {
    ...workerEnv(context, `${context.keyPrefix}memory-${lockStore}:`),
    LOCK_STORE: lockStore,
    CONCURRENCY: String(CONCURRENCY),
  };
  const worker = await WorkerProcess.start('memory-worker.ts', env, ['--expose-gc']);
  try {
    const send = async (count: number): Promise<{ failed: number; firstError?: string }> =>
      worker.call('redeem', { requests: Array.from({ length: count }, () => codeRequest(mintSignIn(entra))) });
    // Warm-up: connections, JIT, authority metadata, the lock channel.
    const warm = await send(warmup);
    if (warm.failed) throw new Error(`warm-up redemptions failed: ${warm.firstError}`);
    const before = await worker.call<Stats>('stats', { gc: true });
    const started = performance.now();
    const checkpoints: Checkpoint[] = [];
    const segment = Math.ceil(total / 4);
    let sent = 0;
    let failed = 0;
    let firstError: string | undefined;
    // Four segments; within one, two batches are in flight so that the worker's lanes never run dry.
    // Between segments the worker is idle, and its heap is read after gc.
    while (sent < total) {
      const segmentEnd = Math.min(total, sent + segment);
      const inFlight: Promise<void>[] = [];
      while (sent < segmentEnd || inFlight.length) {
        while (sent < segmentEnd && inFlight.length < 2) {
          const count = Math.min(BATCH, segmentEnd - sent);
          sent += count;
          inFlight.push(
            send(count).then((reply) => {
              failed += reply.failed;
              firstError ??= reply.firstError;
            }),
          );
        }
        await inFlight.shift();
      }
      if (sent < total) {
        const stats = await worker.call<Stats>('stats', { gc: true });
        checkpoints.push({ redemptions: sent, heapUsed: stats.heapUsed, seconds: (performance.now() - started) / 1000 });
        context.log(`memory (${lockStore} locks): ${sent}/${total} redeemed, heap ${mb(stats.heapUsed)}`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const after = await worker.call<Stats>('stats', { gc: true });
    checkpoints.push({ redemptions: total, heapUsed: after.heapUsed, seconds });
    return {
      lockStore,
      warmup,
      redemptions: total,
      seconds,
      perSecond: total / seconds,
      failed,
      ...(firstError && { firstError }),
      before,
      after,
      checkpoints,
    };
  } finally {
    await worker.stop();
  }
}

export async function memory(context: BenchContext): Promise<BenchmarkResult> {
  const { quick } = context;
  const total = quick ? 4000 : 100_000;
  const memoryLockTotal = quick ? 1000 : 10_000;
  const redis = await redeemMany(context, 'redis', total, quick ? 500 : 2000);
  context.log(`memory: ${total} redemptions with RedisLockStore in ${redis.seconds.toFixed(1)} s`);
  const local = await redeemMany(context, 'memory', memoryLockTotal, quick ? 500 : 1000);
  const growth = redis.after.heapUsed - redis.before.heapUsed;
  const mapsEmpty = redis.after.redemptionsInFlight === 0 && redis.after.waitingKeys === 0;
  const perRecord = (local.after.heapUsed - local.before.heapUsed) / local.redemptions;
  const row = (result: RunResult): string[] => [
    result.lockStore === 'redis' ? 'Redis token store + RedisLockStore' : 'Redis token store + MemoryLockStore (default)',
    result.redemptions.toLocaleString('en-US'),
    `${result.seconds.toFixed(1)} s (${result.perSecond.toFixed(0)}/s)`,
    mb(result.before.heapUsed),
    mb(result.after.heapUsed),
    mb(result.after.heapUsed - result.before.heapUsed),
    String(result.after.redemptionsInFlight),
    result.after.waitingKeys === null ? '-' : String(result.after.waitingKeys),
    result.after.activeKeys === null ? '-' : result.after.activeKeys.toLocaleString('en-US'),
    String(result.failed),
  ];

  return {
    id: 'memory',
    title: `5. Memory after ${total.toLocaleString('en-US')} distinct redemptions (${CONCURRENCY} at a time)`,
    tables: [
      {
        headers: [
          'stores',
          'redemptions',
          'time',
          'heap before',
          'heap after',
          'growth',
          'redemptionsInFlight',
          'waitingKeys',
          'activeKeys',
          'failed',
        ],
        rows: [row(redis), row(local)],
      },
      {
        title: 'heap after gc during the RedisLockStore run',
        headers: ['redemptions', 'heapUsed', 'elapsed'],
        rows: [
          ['0 (after warm-up)', mb(redis.before.heapUsed), '0 s'],
          ...redis.checkpoints.map((point) => [
            point.redemptions.toLocaleString('en-US'),
            mb(point.heapUsed),
            `${point.seconds.toFixed(1)} s`,
          ]),
        ],
      },
    ],
    goals: [
      {
        benchmark: '5. memory',
        goal: `after ${total.toLocaleString('en-US')} redemptions: redemptionsInFlight = 0 and waitingKeys = 0`,
        measured: `redemptionsInFlight ${redis.after.redemptionsInFlight}, waitingKeys ${redis.after.waitingKeys}`,
        met: mapsEmpty,
      },
      {
        benchmark: '5. memory',
        goal: `after ${total.toLocaleString('en-US')} redemptions: heap growth < 5 MB`,
        measured: mb(growth),
        met: growth < 5 * 1024 * 1024,
      },
    ],
    notes: [
      `main run: tokens in Redis (@keyv/redis) and locks in a RedisLockStore, default options, so nothing the library keeps per code or per account has to live in the process; a leak would show as heap growth. Every code is for a new user (${total.toLocaleString('en-US')} partitions in Redis). heap = heapUsed after gc, with the process idle, after a warm-up of ${redis.warmup.toLocaleString('en-US')} redemptions.`,
      `second run, ${memoryLockTotal.toLocaleString('en-US')} redemptions with the default MemoryLockStore: by design it keeps each code's claim record (outcome plus an expiry timer) for recordTtlMs (15 minutes), so late duplicates are answered; activeKeys counts them, about ${(perRecord / 1024).toFixed(2)} KB of heap each. At ${redis.perSecond.toFixed(0)} sign-ins/s sustained for 15 minutes that is ${((perRecord * redis.perSecond * 900) / 2 ** 20).toFixed(0)} MB; a shorter redeem.recordTtlMs bounds it (a code lives about 10 minutes).`,
      ...(redis.failed ? [`${redis.failed} redemptions failed: ${redis.firstError}`] : []),
      ...(local.failed ? [`${local.failed} redemptions failed (MemoryLockStore run): ${local.firstError}`] : []),
    ],
    data: { concurrency: CONCURRENCY, redisLocks: redis, memoryLocks: local, heapGrowthBytes: growth, memoryLockBytesPerRecord: perRecord },
  };
}
