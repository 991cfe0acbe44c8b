// Small statistics helpers: percentiles of one run, and the median of several runs with their spread.
import { performance } from 'node:perf_hooks';

/** The p-th percentile (0–100) of `values`, linearly interpolated. `NaN` for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

/** One figure measured in several runs: the median of the runs, and their min, max, p25 and p75. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
  runs: number[];
}

export function figure(runs: readonly number[]): Figure {
  return {
    median: percentile(runs, 50),
    min: Math.min(...runs),
    max: Math.max(...runs),
    p25: percentile(runs, 25),
    p75: percentile(runs, 75),
    runs: [...runs],
  };
}

/** Latency percentiles (ms) of one run. */
export interface RunLatency {
  p50: number;
  p99: number;
  mean: number;
  count: number;
}

export function latencyOf(samples: readonly number[]): RunLatency {
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    mean: samples.reduce((sum, value) => sum + value, 0) / samples.length,
    count: samples.length,
  };
}

/** Times `count` sequential calls of `call`; returns each call's latency in ms. */
export async function timeSequential(count: number, call: (index: number) => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < count; index++) {
    const start = performance.now();
    await call(index);
    samples.push(performance.now() - start);
  }
  return samples;
}

/**
 * Runs `count` calls with at most `concurrency` in flight; returns each call's latency in ms and
 * the wall-clock time of the whole batch.
 */
export async function timeConcurrent(
  count: number,
  concurrency: number,
  call: (index: number) => Promise<unknown>,
): Promise<{ samples: number[]; wallMs: number }> {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      const start = performance.now();
      await call(index);
      samples.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return { samples, wallMs: performance.now() - started };
}

/** Formats milliseconds with a precision that suits their size. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs < 1) return `${value.toFixed(3)} ms`;
  if (abs < 100) return `${value.toFixed(2)} ms`;
  return `${value.toFixed(0)} ms`;
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MB`;
}

/** `median (min–max)` with the given formatter. */
export function spread(f: Figure, format: (value: number) => string = ms): string {
  if (f.runs.length <= 1) return format(f.median);
  return `${format(f.median)} (${format(f.min)}–${format(f.max)})`;
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a';
}

/** Runs the garbage collector when node was started with --expose-gc (twice, to settle weak refs and finalizers). */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
