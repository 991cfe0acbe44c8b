// Benchmark 5: what stays in the process after many distinct redemptions, that is leaks. 100,000
// codes (one new user each) go through acquireTokenByCode, 64 at a time, in a process started with
// --expose-gc; heap and in-process maps are read after gc before and after. Each new user's
// partition goes into the in-process L1, which grows up to its bound by design: the L1 is filled to
// its bound (an explicit 8 MiB) before the heap is first read, so what grows after that is not
// bounded caching, and the L1's own held bytes are reported beside the heap.
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, workerEnv } from './lib/context';
import type { L1Figures } from './lib/l1';
import type { BenchmarkResult } from './lib/report';
import { mb } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';

const CONCURRENCY = 64;
const BATCH = 2000;
/** The L1's byte bound in this benchmark (the default is 64 MiB: benchmark 4 measures its heap). */
const L1_MAX_BYTES = 8 * 1024 * 1024;
/** Redemptions per step while filling the L1, and at most this many steps. */
const FILL_STEP = 250;
const FILL_STEPS_MAX = 80;

interface Stats {
  heapUsed: number;
  redemptionsInFlight: number;
  waitingKeys: number | null;
  activeKeys: number | null;
  l1: L1Figures | null;
}

interface Checkpoint {
  redemptions: number;
  heapUsed: number;
  l1Bytes: number | null;
  seconds: number;
}

interface RunResult {
  lockStore: 'redis' | 'memory';
  warmup: number;
  /** Redemptions after the warm-up until the L1 had dropped a partition to make room. */
  fill: number;
  redemptions: number;
  seconds: number;
  perSecond: number;
  failed: number;
  firstError?: string;
  before: Stats;
  after: Stats;
  checkpoints: Checkpoint[];
}

/** Full: it has dropped a partition to make room. No L1 (a build without one): nothing to fill. */
const isFull = (l1: L1Figures | null): boolean => l1 === null || l1.evictions > 0;

/** What the L1 holds, by its own weighing: `8.00 MB in 850 partitions`. */
const l1Held = (l1: L1Figures | null): string => (l1 ? `${mb(l1.bytes)} in ${l1.entries.toLocaleString('en-US')} partitions` : 'none');

/** Bytes as B or KB, for growth per redemption. */
const bytesOf = (bytes: number): string => (Math.abs(bytes) < 1024 ? `${bytes.toFixed(0)} B` : `${(bytes / 1024).toFixed(2)} KB`);

async function redeemMany(context: BenchContext, lockStore: 'redis' | 'memory', total: number, warmup: number): Promise<RunResult> {
  const { entra } = context;
  const env = {
    ...workerEnv(context, `${context.keyPrefix}memory-${lockStore}:`),
    LOCK_STORE: lockStore,
    CONCURRENCY: String(CONCURRENCY),
    L1_MAX_BYTES: String(L1_MAX_BYTES),
  };
  const worker = await WorkerProcess.start('memory-worker.ts', env, ['--expose-gc']);
  try {
    const send = async (count: number): Promise<{ failed: number; firstError?: string }> =>
      worker.call('redeem', { requests: Array.from({ length: count }, () => codeRequest(mintSignIn(entra))) });
    // Warm-up: connections, JIT, authority metadata, the lock channel.
    const warm = await send(warmup);
    if (warm.failed) throw new Error(`warm-up redemptions failed: ${warm.firstError}`);
    // Fill the L1 to its bound (it has dropped a partition to make room): from then on each new
    // partition replaces an older one, and the heap holds all the L1 ever will.
    let fill = 0;
    for (let step = 0; !isFull((await worker.call<Stats>('stats', {})).l1); step++) {
      if (step === FILL_STEPS_MAX) throw new Error(`the L1 was not full after ${fill} more redemptions`);
      const filled = await send(FILL_STEP);
      if (filled.failed) throw new Error(`redemptions filling the L1 failed: ${filled.firstError}`);
      fill += FILL_STEP;
    }
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
        const l1Bytes = stats.l1?.bytes ?? null;
        checkpoints.push({ redemptions: sent, heapUsed: stats.heapUsed, l1Bytes, seconds: (performance.now() - started) / 1000 });
        context.log(`memory (${lockStore} locks): ${sent}/${total} redeemed, heap ${mb(stats.heapUsed)}, L1 ${l1Held(stats.l1)}`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const after = await worker.call<Stats>('stats', { gc: true });
    checkpoints.push({ redemptions: total, heapUsed: after.heapUsed, l1Bytes: after.l1?.bytes ?? null, seconds });
    return {
      lockStore,
      warmup,
      fill,
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
  const flushed = (result: RunResult): number => (result.after.l1?.flushes ?? 0) - (result.before.l1?.flushes ?? 0);
  const row = (result: RunResult): string[] => [
    result.lockStore === 'redis' ? 'Redis token store + RedisLockStore' : 'Redis token store + MemoryLockStore (default)',
    result.redemptions.toLocaleString('en-US'),
    `${result.seconds.toFixed(1)} s (${result.perSecond.toFixed(0)}/s)`,
    mb(result.before.heapUsed),
    mb(result.after.heapUsed),
    mb(result.after.heapUsed - result.before.heapUsed),
    bytesOf((result.after.heapUsed - result.before.heapUsed) / result.redemptions),
    l1Held(result.before.l1),
    l1Held(result.after.l1),
    String(result.after.redemptionsInFlight),
    result.after.waitingKeys === null ? '-' : String(result.after.waitingKeys),
    result.after.activeKeys === null ? '-' : result.after.activeKeys.toLocaleString('en-US'),
    String(result.failed),
  ];
  const l1Line = (result: RunResult): string =>
    `the L1 held ${l1Held(result.before.l1)} at the first heap reading and ${l1Held(result.after.l1)} at the last`;

  return {
    id: 'memory',
    title: `5. Memory after ${total.toLocaleString('en-US')} distinct redemptions (${CONCURRENCY} at a time), the L1 full at its bound (${mb(L1_MAX_BYTES)}) from the start`,
    tables: [
      {
        headers: [
          'stores',
          'redemptions',
          'time',
          'heap before',
          'heap after',
          'growth',
          'per redemption',
          'L1 held before',
          'L1 held after',
          'redemptionsInFlight',
          'waitingKeys',
          'activeKeys',
          'failed',
        ],
        rows: [row(redis), row(local)],
      },
      {
        title: 'heap after gc during the RedisLockStore run, and what the L1 holds by its own weighing',
        headers: ['redemptions', 'heapUsed', 'L1 held', 'elapsed'],
        rows: [
          ['0 (after warm-up and fill)', mb(redis.before.heapUsed), redis.before.l1 ? mb(redis.before.l1.bytes) : '-', '0 s'],
          ...redis.checkpoints.map((point) => [
            point.redemptions.toLocaleString('en-US'),
            mb(point.heapUsed),
            point.l1Bytes === null ? '-' : mb(point.l1Bytes),
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
        measured: `${mb(growth)} (${bytesOf(growth / total)} per redemption); ${l1Line(redis)}`,
        met: growth < 5 * 1024 * 1024,
      },
    ],
    notes: [
      `what is measured: heap growth from the first reading to the last (heapUsed after gc, the process idle), that is what ${total.toLocaleString('en-US')} more redemptions left behind. Every code is for a new user, so each redemption puts a new partition in the in-process L1; the L1 is bounded (here l1.maxBytes = ${mb(L1_MAX_BYTES)}, the default being 64 MiB) and was filled to that bound before the first reading (after ${redis.warmup.toLocaleString('en-US')} warm-up redemptions, ${redis.fill.toLocaleString('en-US')} more until it had dropped a partition to make room), so from then on each new partition replaces an older one: growth is what the bounded cache does not explain, a leak. L1 held = the L1's own estimate of the heap of what it holds, which bounds that heap from above (benchmark 4).`,
      `main run: tokens in Redis (@keyv/redis) and locks in a RedisLockStore, default options but the L1 bound, so nothing the library keeps per code or per account has to live in the process beyond the L1 (${total.toLocaleString('en-US')} partitions in Redis).`,
      `second run, ${memoryLockTotal.toLocaleString('en-US')} redemptions with the default MemoryLockStore, the L1 full the same way: by design the lock store keeps each code's claim record (outcome plus an expiry timer) for recordTtlMs (15 minutes), so late duplicates are answered; activeKeys counts them, about ${(perRecord / 1024).toFixed(2)} KB of heap each. At ${redis.perSecond.toFixed(0)} sign-ins/s sustained for 15 minutes that is ${((perRecord * redis.perSecond * 900) / 2 ** 20).toFixed(0)} MB; a shorter redeem.recordTtlMs bounds it (a code lives about 10 minutes).${quick ? ` With --quick, ${memoryLockTotal.toLocaleString('en-US')} records weigh about as much as the heap moves between readings (1 to 2 MB): take this figure from a full run.` : ''}`,
      ...[redis, local].flatMap((result) =>
        flushed(result) > 0
          ? [
              `the L1 was emptied ${flushed(result)} time(s) during the ${result.lockStore} run (coherence lost or a flush): its held bytes above show how full it was at each reading`,
            ]
          : [],
      ),
      ...(redis.failed ? [`${redis.failed} redemptions failed: ${redis.firstError}`] : []),
      ...(local.failed ? [`${local.failed} redemptions failed (MemoryLockStore run): ${local.firstError}`] : []),
    ],
    data: {
      concurrency: CONCURRENCY,
      l1MaxBytes: L1_MAX_BYTES,
      redisLocks: redis,
      memoryLocks: local,
      heapGrowthBytes: growth,
      heapGrowthBytesPerRedemption: growth / total,
      memoryLockBytesPerRecord: perRecord,
    },
  };
}
