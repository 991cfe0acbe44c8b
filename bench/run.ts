// `npm run bench` (`tsx bench/run.ts`): runs the benchmarks, prints a table per benchmark and the
// goals, and writes bench/results/latest.json (latest-quick.json with --quick).
//
//   npm run bench                      # full run (about 4 minutes on 2 cores; budget 8)
//   npm run bench -- --quick           # reduced iterations and sizes (about 35 s)
//   npm run bench -- --only=silent,storm   # a subset (written to latest-partial.json)
//   npm run bench -- --only=postgres       # PostgreSQL beside Redis (starts its own PostgreSQL unless POSTGRES_URL is set)
//
// It starts its own fake Entra ID (in this process) and its own redis-server on a free port, unless
// REDIS_URL is set; every key it writes carries a unique prefix and is deleted at the end.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient } from '@keyv/redis';
import { FakeEntraId, RedisServer } from '../src/testing';
import type { BenchContext } from './lib/context';
import { goalTable, formatTable, printResult } from './lib/report';
import type { BenchmarkResult } from './lib/report';
import { silentCacheHit } from './silent-cache-hit';
import { duplicateStorm } from './duplicate-storm';
import { redemptionOverhead } from './redemption-overhead';
import { growth } from './growth';
import { memory } from './memory';
import { coherence } from './coherence';
import { fleetFlight } from './fleet-flight';
import { silentTelemetry } from './silent-telemetry';
import { postgres } from './postgres';

const BENCHMARKS: Record<string, (context: BenchContext) => Promise<BenchmarkResult>> = {
  silent: silentCacheHit,
  storm: duplicateStorm,
  redemption: redemptionOverhead,
  growth,
  memory,
  coherence,
  flight: fleetFlight,
  telemetry: silentTelemetry,
  postgres,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyArg = args.find((arg) => arg.startsWith('--only='));
  const only = onlyArg ? onlyArg.slice('--only='.length).split(',') : undefined;
  for (const name of only ?? [])
    if (!BENCHMARKS[name]) throw new Error(`unknown benchmark ${name}; one of ${Object.keys(BENCHMARKS).join(', ')}`);
  const log = (message: string): void =>
    void process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  const started = performance.now();

  const tempDir = mkdtempSync(join(tmpdir(), 'msal-dc-bench-'));
  let redisServer: RedisServer | undefined;
  let entra: FakeEntraId | undefined;
  const keyPrefix = `bench-${randomUUID().slice(0, 8)}:`;
  const cleanup = async (): Promise<void> => {
    await entra?.close().catch(() => undefined);
    if (redisServer) await redisServer.stop().catch(() => undefined);
    else if (process.env.REDIS_URL) await deleteKeys(process.env.REDIS_URL, keyPrefix).catch(() => undefined);
    rmSync(tempDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    void cleanup().finally(() => process.exit(130));
  });

  try {
    const redisUrl = process.env.REDIS_URL ?? (redisServer = await RedisServer.start()).url;
    entra = await FakeEntraId.start();
    await entra.trustInThisProcess();
    const caFile = join(tempDir, 'fake-entra-ca.pem');
    writeFileSync(caFile, entra.caCertPem);
    const context: BenchContext = { quick, entra, redisUrl, keyPrefix, caFile, log };
    const machine = {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      redis: await redisVersion(redisUrl),
      redisSource: redisServer ? 'redis-server started by the bench' : 'REDIS_URL',
      loadAverageAtStart: loadavg().map((value) => Number(value.toFixed(2))),
    };
    console.log(
      `msal-distributed-cache benchmarks (${quick ? 'quick' : 'full'}) on ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, redis ${machine.redis}`,
    );

    const results: BenchmarkResult[] = [];
    for (const [name, benchmark] of Object.entries(BENCHMARKS)) {
      if (only && !only.includes(name)) continue;
      log(`${name}: starting`);
      const start = performance.now();
      const result = await benchmark(context);
      result.durationMs = performance.now() - start;
      printResult(result);
      results.push(result);
    }

    const goals = results.flatMap((result) => result.goals);
    const durationMs = performance.now() - started;
    console.log(`\n${formatTable(goalTable(goals))}`);
    const loadAverageAtEnd = loadavg().map((value) => Number(value.toFixed(2)));
    console.log(`\n${goals.filter((goal) => goal.met).length} of ${goals.length} goals met; total ${(durationMs / 1000).toFixed(1)} s`);
    console.log(`load average (1, 5, 15 min): at start ${machine.loadAverageAtStart.join(', ')}; at end ${loadAverageAtEnd.join(', ')}`);

    const file = only ? 'latest-partial.json' : quick ? 'latest-quick.json' : 'latest.json';
    const resultsDir = join(__dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const report = {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      durationMs: Math.round(durationMs),
      commit: gitCommit(),
      machine: { ...machine, loadAverageAtEnd },
      goals,
      benchmarks: Object.fromEntries(
        results.map((result) => [
          result.id,
          { title: result.title, durationMs: Math.round(result.durationMs ?? 0), goals: result.goals, notes: result.notes, ...result.data },
        ]),
      ),
    };
    writeFileSync(join(resultsDir, file), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`written: bench/results/${file}`);
  } finally {
    await cleanup();
  }
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: __dirname,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

async function redisVersion(url: string): Promise<string> {
  const client = createClient({ url });
  await client.connect();
  try {
    const info = await client.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } finally {
    await client.quit();
  }
}

/** Deletes every key under `prefix` (only when REDIS_URL pointed at a Redis the bench did not start). */
async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length) await client.unlink(keys);
    }
  } finally {
    await client.quit();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
