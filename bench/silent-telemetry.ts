// Benchmark 8: what telemetry costs on a silent cache hit (acquireTokenSilent answered from the
// in-process L1, benchmark 1's fastest path, where a fixed cost weighs the most). App instances on
// the same Redis partition, each its own DistributedTokenCache (default options, the L1 on) and
// DistributedClientApplication (which uses its cache's `telemetry`):
//   (a) `telemetry: false`: no instrumentation at all (the baseline);
//   (a') the same again, a second instance: the A/A control (how far apart identical ones measure);
//   (b) the default: @opentelemetry/api is installed, but no SDK is registered (no providers, no
//       context manager), so every instrument and span is the API's no-op;
//   (c) a real SDK passed through the option: a MeterProvider with an in-memory reader and a
//       BasicTracerProvider with a BatchSpanProcessor in front of an InMemorySpanExporter, with the
//       AsyncLocalStorage context manager registered while (c) runs (as an SDK set-up does).
// Method of benchmark 1 (sequential calls, p50 per block), with the variants alternated in short
// blocks, in a rotating order, so that drift of the machine hits all of them alike; the ratios to
// (a) are taken within each round, and their median over the rounds is the figure, with the spread
// between rounds and a distribution-free 95 % interval of that median.
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { DistributedTokenCacheOptions } from '../src';
import { DistributedClientApplication, DistributedTokenCache } from '../src';
import type { BenchContext } from './lib/context';
import { codeRequest, mintSignIn, newUser, SCOPES } from './lib/context';
import { HitLevels, percent } from './lib/l1';
import type { BenchmarkResult } from './lib/report';
import { figure, latencyOf, ms, percentile, ratio, spread, timeSequential } from './lib/stats';
import type { Figure } from './lib/stats';

/** The goal of issue #16: the API without an SDK costs at most this much more than no instrumentation. */
const GOAL_NO_SDK_RATIO = 1.02;

/** A metric reader read only when asked (as a Prometheus scrape), cumulative. */
class InMemoryMetricReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

interface Variant {
  name: string;
  cache: DistributedTokenCache;
  call: () => Promise<unknown>;
  /** Around each timed block of this variant (outside the timing). */
  before?: () => void;
  after?: () => Promise<void>;
}

/** A distribution-free 95 % interval of the median of `values` (order statistics; n >= 6). */
function medianInterval(values: readonly number[]): { low: number; high: number } {
  const sorted = [...values].sort((x, y) => x - y);
  const n = sorted.length;
  const half = 0.98 * Math.sqrt(n); // 1.96 / 2 * sqrt(n)
  const lowRank = Math.max(1, Math.floor(n / 2 - half));
  const highRank = Math.min(n, Math.ceil(1 + n / 2 + half));
  return { low: sorted[lowRank - 1]!, high: sorted[highRank - 1]! };
}

const pct = (value: number): string => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} %`;
const interval = ({ low, high }: { low: number; high: number }): string => `${ratio(low)}–${ratio(high)}`;

/** A ratio to (a), round by round: the median, the spread between rounds and the interval of the median. */
interface RoundRatio {
  figure: Figure;
  interval: { low: number; high: number };
}

export async function silentTelemetry(bench: BenchContext): Promise<BenchmarkResult> {
  const { entra, redisUrl, quick } = bench;
  const rounds = quick ? 12 : 40;
  const callsPerRound = quick ? 300 : 600;
  const warmup = quick ? 300 : 1000;
  const keyPrefix = `${bench.keyPrefix}telemetry:`;
  const config = entra.msalConfig();
  const newCache = (extra: Partial<DistributedTokenCacheOptions>): DistributedTokenCache =>
    new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(redisUrl) }), keyPrefix, ...extra });

  // Signed in by an instance of its own, so that the measured ones are alike (each learns the account from its first silent call).
  const signInCache = newCache({ telemetry: false });
  const signedIn = await new DistributedClientApplication(config, { cache: signInCache }).acquireTokenByCode(
    codeRequest(mintSignIn(entra, newUser('Telemetry User'))),
  );
  await signInCache.close();
  const request = { homeAccountId: signedIn.account!.homeAccountId, scopes: SCOPES };

  // (c)'s SDK, passed through the option: nothing is registered globally but, while (c) runs, the context manager.
  const reader = new InMemoryMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spanExporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let spans = 0;

  const variant = (name: string, options: Partial<DistributedTokenCacheOptions>, hooks: Partial<Variant> = {}): Variant => {
    const cache = newCache(options);
    const app = new DistributedClientApplication(config, { cache });
    return { name, cache, call: () => app.acquireTokenSilent(request), ...hooks };
  };
  const variants: Variant[] = [
    variant('(a) telemetry: false (no instrumentation)', { telemetry: false }),
    variant("(a') telemetry: false, a second instance (the A/A control)", { telemetry: false }),
    variant('(b) default: @opentelemetry/api, no SDK registered', {}),
    variant(
      '(c) SDK via the option: in-memory metric reader, in-memory span exporter (batch processor)',
      { telemetry: { meterProvider, tracerProvider } },
      {
        before: () => void context.setGlobalContextManager(contextManager.enable()),
        after: async () => {
          await tracerProvider.forceFlush();
          context.disable(); // the manager too
          spans += spanExporter.getFinishedSpans().length;
          spanExporter.reset(); // what is exported does not pile up in the heap
        },
      },
    ),
  ];
  const [A, CONTROL, B, C] = [0, 1, 2, 3] as const;
  const levels = variants.map((each) => new HitLevels(each.cache));
  const timed = async (each: Variant, count: number): Promise<number[]> => {
    each.before?.();
    try {
      return await timeSequential(count, each.call);
    } finally {
      await each.after?.();
    }
  };

  // Sanity: every call a cache hit.
  for (const each of variants) {
    const result = (await each.call()) as { fromCache?: boolean };
    if (!result.fromCache) throw new Error(`${each.name}: not a cache hit`);
  }
  for (const each of variants) await timed(each, warmup);
  levels.forEach((level) => level.reset());
  const sdkOperationsBefore = await operationsRecorded(reader);
  spans = 0;

  const tokenCallsBefore = entra.tokenCallCount();
  const p50 = variants.map(() => [] as number[]);
  const mean = variants.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so that no variant always runs first (or last) in a round.
    for (let offset = 0; offset < variants.length; offset++) {
      const index = (round + offset) % variants.length;
      const latency = latencyOf(await timed(variants[index]!, callsPerRound));
      p50[index]!.push(latency.p50);
      mean[index]!.push(latency.mean);
    }
    if ((round + 1) % 10 === 0 || round + 1 === rounds) bench.log(`telemetry: round ${round + 1}/${rounds} done`);
  }
  const tokenCalls = entra.tokenCallCount() - tokenCallsBefore;
  const measuredCalls = rounds * callsPerRound;
  const sdkOperations = (await operationsRecorded(reader)) - sdkOperationsBefore;
  const hitRates = levels.map((level) => level.l1Rate);
  levels.forEach((level) => level.stop());
  await Promise.all(variants.map((each) => each.cache.close()));
  await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);

  const toA = (values: number[][], index: number): RoundRatio => {
    const runs = values[index]!.map((value, round) => value / values[A]![round]!);
    return { figure: figure(runs), interval: medianInterval(runs) };
  };
  const p50Ratios = variants.map((_, index) => toA(p50, index));
  const meanRatios = variants.map((_, index) => toA(mean, index));
  const p50Figures = p50.map((runs) => figure(runs));
  const meanFigures = mean.map((runs) => figure(runs));
  const b = p50Ratios[B]!;
  const c = p50Ratios[C]!;
  const control = p50Ratios[CONTROL]!;
  const added = (index: number): number =>
    percentile(
      p50[index]!.map((value, round) => value - p50[A]![round]!),
      50,
    );
  // Whether this run tells: the interval of b/a lies wholly on one side of the goal.
  const verdict =
    b.interval.high <= GOAL_NO_SDK_RATIO
      ? 'the whole interval within the goal'
      : b.interval.low > GOAL_NO_SDK_RATIO
        ? 'the whole interval above the goal'
        : 'the interval straddles the goal: not resolved by this run';

  return {
    id: 'silentTelemetry',
    title: '8. Telemetry on a silent cache hit (acquireTokenSilent from the L1)',
    tables: [
      {
        headers: ['variant', 'p50 per call', 'mean per call', 'p50 / (a), by round', 'mean / (a), by round', 'L1 hits'],
        rows: variants.map((each, index) => [
          each.name,
          spread(p50Figures[index]!),
          spread(meanFigures[index]!),
          index === A ? '1' : spread(p50Ratios[index]!.figure, ratio),
          index === A ? '1' : spread(meanRatios[index]!.figure, ratio),
          percent(hitRates[index]!),
        ]),
      },
      {
        headers: ['ratio to (a), p50, by round', 'median', '95 % interval of the median', 'p25–p75 of the rounds', 'added per call'],
        rows: [CONTROL, B, C].map((index) => {
          const { figure: f, interval: i } = p50Ratios[index]!;
          return [
            variants[index]!.name.slice(0, 4).trim(),
            `${ratio(f.median)} (${pct(f.median - 1)})`,
            interval(i),
            `${ratio(f.p25)}–${ratio(f.p75)}`,
            ms(added(index)),
          ];
        }),
      },
      {
        headers: ['sanity', 'value'],
        rows: [
          ['(c) operations recorded while measuring / (c) calls', `${sdkOperations} / ${measuredCalls}`],
          ['(c) spans exported per call', (spans / measuredCalls).toFixed(2)],
          ['token-endpoint calls while measuring', String(tokenCalls)],
        ],
      },
    ],
    goals: [
      {
        benchmark: '8. telemetry',
        goal: 'silent hit, @opentelemetry/api without an SDK: within 2 % of no instrumentation (b/a p50 <= 1.02)',
        measured: `${ratio(b.figure.median)} (${pct(b.figure.median - 1)}, ${ms(added(B))} per call; 95 % interval ${interval(b.interval)}, ${verdict}; A/A control ${ratio(control.figure.median)}, interval ${interval(control.interval)})`,
        met: b.figure.median <= GOAL_NO_SDK_RATIO,
      },
      {
        benchmark: '8. telemetry',
        goal: 'silent hit with an SDK (in-memory reader and exporter): c/a p50 (stated; met = every call recorded)',
        measured: `${ratio(c.figure.median)} (${pct(c.figure.median - 1)}, ${ms(added(C))} per call; 95 % interval ${interval(c.interval)}; ${(spans / measuredCalls).toFixed(2)} spans per call)`,
        met: sdkOperations === measuredCalls,
      },
    ],
    notes: [
      `${rounds} rounds; per round ${callsPerRound} sequential calls of each variant, in a rotating order, after ${warmup} warm-up calls each. The ratios to (a) are taken within each round; the figure is their median over the rounds, with the spread between rounds (p25–p75, and min–max in the first table) and a distribution-free 95 % interval of the median (order statistics). (a') is a second instance exactly like (a): how far apart two identical instances measure.`,
      `every call a hit from the L1 (rates above); each instance reads the same partition from its own L1.`,
      "(b) is what an app gets that has @opentelemetry/api installed (it is in most dependency trees) and no SDK: the library's instruments and spans are the API's no-ops, and its wrappers (operation, partition read, event tap) still run. (a) turns the instrumentation off altogether.",
      "(c): nothing is registered globally; the AsyncLocalStorage context manager is registered just before each (c) block and disabled after it (so the others run with none, as without an SDK), and the exporter is emptied after each block. The 'met' of (c) only checks that every measured call recorded its operation: its cost is stated, not a goal.",
    ],
    data: {
      rounds,
      callsPerRound,
      warmup,
      variants: variants.map((each, index) => ({
        name: each.name,
        p50: p50Figures[index],
        mean: meanFigures[index],
        p50RatioToA: p50Ratios[index],
        meanRatioToA: meanRatios[index],
        l1HitRate: hitRates[index],
      })),
      sdkOperationsRecorded: sdkOperations,
      sdkSpansPerCall: spans / measuredCalls,
      tokenCallsWhileMeasuring: tokenCalls,
    },
  };
}

/** The acquire_token_silent operations the SDK's reader has (cumulative). */
async function operationsRecorded(reader: MetricReader): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  let count = 0;
  for (const { metrics } of resourceMetrics.scopeMetrics)
    for (const metric of metrics)
      if (metric.descriptor.name === 'msal_dc.operation.duration' && metric.dataPointType === DataPointType.HISTOGRAM)
        for (const point of metric.dataPoints)
          if (point.attributes['msal_dc.operation'] === 'acquire_token_silent') count += point.value.count;
  return count;
}
