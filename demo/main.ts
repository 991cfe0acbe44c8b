// `npm start`: the problem and the fix side by side. Starts a fake Entra ID, simulates several
// app instances, signs users in and fires duplicate callbacks for the five real causes, through
// this library and through plain ConfidentialClientApplication instances.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeEntraId } from '../src/testing';
import type { Side } from './attempt';
import { inProcessInstances, processInstances } from './instances';
import type { Instances } from './instances';
import { renderTable, summarize } from './report';
import type { SideSummary } from './report';
import { CAUSES, runTraffic } from './traffic';

const USAGE = `Usage: npm start -- [options]

Simulates app instances receiving duplicate OAuth callbacks (${Object.keys(CAUSES).length} real causes) and
compares msal-distributed-cache with plain ConfidentialClientApplication instances.

Options:
  --users <n>        sign-ins to simulate (default 25)
  --instances <n>    app instances, at least 2 (default 3)
  --redis <url>      run each instance as its own OS process sharing this Redis
                     (default: all instances in this process, in-memory stores)
  --postgres <url>   run each instance as its own OS process sharing this PostgreSQL
                     database (token cache and lock store, no Redis)
  --latency <ms>     token-endpoint latency of the fake Entra ID (default 80)
  --json             print machine-readable results on stdout
  -h, --help         show this help`;

class UsageError extends Error {}

function integerOption(value: string | undefined, name: string, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < minimum)
    throw new UsageError(`--${name} must be an integer of at least ${minimum}, got "${value}"`);
  return number;
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string' },
      instances: { type: 'string' },
      redis: { type: 'string' },
      postgres: { type: 'string' },
      latency: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.redis !== undefined && !/^rediss?:\/\//.test(values.redis))
    throw new UsageError(`--redis must be a redis:// or rediss:// URL, got "${values.redis}"`);
  if (values.postgres !== undefined && !/^postgres(ql)?:\/\//.test(values.postgres))
    throw new UsageError(`--postgres must be a postgres:// or postgresql:// URL, got "${values.postgres}"`);
  if (values.redis !== undefined && values.postgres !== undefined) throw new UsageError('--redis and --postgres cannot be used together');
  return {
    help: values.help,
    json: values.json,
    redis: values.redis,
    postgres: values.postgres,
    users: integerOption(values.users, 'users', 25, 1),
    instances: integerOption(values.instances, 'instances', 3, 2),
    latencyMs: integerOption(values.latency, 'latency', 80, 0),
  };
}

/** The URL with its password, if any, masked (it is printed). */
function withoutPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function main(): Promise<void> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const progress = (text: string): void => void process.stderr.write(`${text}\n`);

  const entra = await FakeEntraId.start({ tokenLatencyMs: options.latencyMs });
  await entra.trustInThisProcess();
  for (let index = 0; index < options.users; index++)
    entra.addUser({ oid: randomUUID(), name: `Demo User ${index + 1}`, username: `user${index + 1}@example.test` });
  const caDirectory = mkdtempSync(join(tmpdir(), 'msal-distributed-cache-demo-'));
  let instances: Instances | undefined;
  try {
    const shared = options.redis ?? options.postgres;
    const mode = shared
      ? `${options.instances} OS processes sharing ${withoutPassword(shared)}`
      : `${options.instances} instances in this process, in-memory Keyv and MemoryLockStore`;
    progress(`Fake Entra ID at ${entra.authority} (token endpoint latency ${options.latencyMs} ms)`);
    progress(`App instances: ${mode}`);
    if (shared) {
      writeFileSync(join(caDirectory, 'ca.pem'), entra.caCertPem);
      const { auth } = entra.msalConfig();
      instances = await processInstances(options.instances, {
        NODE_EXTRA_CA_CERTS: join(caDirectory, 'ca.pem'),
        DEMO_CLIENT_ID: auth.clientId,
        DEMO_CLIENT_SECRET: auth.clientSecret,
        DEMO_AUTHORITY: auth.authority,
        DEMO_HOST: entra.host,
        ...(options.redis ? { DEMO_REDIS_URL: options.redis } : { DEMO_POSTGRES_URL: options.postgres! }),
        DEMO_KEY_PREFIX: `demo-${randomUUID()}:`,
      });
    } else {
      instances = await inProcessInstances(options.instances, entra.msalConfig());
    }

    const summaries = {} as Record<Side, SideSummary>;
    for (const side of ['ours', 'plain'] as const) {
      const label = side === 'ours' ? 'msal-distributed-cache' : 'plain ConfidentialClientApplication';
      const records = await runTraffic(side, instances, entra, options.users, (done) => {
        if (done === options.users || done % 5 === 0) progress(`  ${label}: ${done}/${options.users} sign-ins with duplicate callbacks`);
      });
      summaries[side] = summarize(records, entra);
    }

    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({ mode: options.redis ? 'redis' : options.postgres ? 'postgres' : 'embedded', instances: options.instances, users: options.users, tokenLatencyMs: options.latencyMs, results: summaries }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(`\n${renderTable(summaries)}\n\n`);
      process.stdout.write(
        `Causes simulated:\n${Object.entries(CAUSES)
          .map(([cause, text]) => `  ${cause}: ${text}`)
          .join('\n')}\n`,
      );
      process.stdout.write(`\nEvery duplicate proved it belonged to the same sign-in with the PKCE verifier.\n`);
    }
  } finally {
    await instances?.close();
    await entra.close();
    rmSync(caDirectory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
