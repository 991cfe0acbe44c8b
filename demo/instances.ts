// The simulated app instances: in this process (embedded default: in-memory Keyv and one
// MemoryLockStore shared by all), or one OS process each sharing Redis (--redis).
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import Keyv from 'keyv';
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Configuration } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore } from '../src';
import type { DistributedAuthorizationCodeRequest } from '../src';
import { attempt } from './attempt';
import type { AttemptResult, Side } from './attempt';

export interface Instances {
  readonly count: number;
  /** Builds the authorize URL on instance 0 of a side (the sign-in starts there). */
  authCodeUrl(side: Side, request: { redirectUri: string; scopes: string[]; codeChallenge: string; state: string }): Promise<string>;
  redeem(side: Side, instance: number, request: DistributedAuthorizationCodeRequest): Promise<AttemptResult>;
  close(): Promise<void>;
}

/** All instances in this process, sharing one in-memory Keyv and one MemoryLockStore. */
export async function inProcessInstances(count: number, msalConfig: Configuration): Promise<Instances> {
  const cache = new DistributedTokenCache({ store: new Keyv(), lockStore: new MemoryLockStore() });
  const ours = Array.from({ length: count }, () => new DistributedClientApplication(msalConfig, { cache }));
  const plain = Array.from({ length: count }, () => new ConfidentialClientApplication(msalConfig));
  return {
    count,
    authCodeUrl: (side, request) => (side === 'ours' ? ours[0]! : plain[0]!).getAuthCodeUrl({ ...request, codeChallengeMethod: 'S256' }),
    redeem: (side, instance, request) => attempt(side === 'ours' ? ours[instance]! : plain[instance]!, request),
    close: () => cache.close(),
  };
}

/** One OS process per instance (demo/instance-worker.ts), sharing Redis at `redisUrl`. */
export async function processInstances(count: number, env: Record<string, string>): Promise<Instances> {
  const workers = await Promise.all(Array.from({ length: count }, () => Worker.start(env)));
  return {
    count,
    authCodeUrl: async (side, request) => (await workers[0]!.call({ op: 'authCodeUrl', side, request })) as string,
    redeem: async (side, instance, request) => (await workers[instance]!.call({ op: 'redeem', side, request })) as AttemptResult,
    close: async () => {
      await Promise.all(workers.map((worker) => worker.stop()));
    },
  };
}

class Worker {
  private nextId = 0;
  private readonly pending = new Map<number, (value: unknown) => void>();

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  static async start(env: Record<string, string>): Promise<Worker> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'instance-worker.ts')], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const worker = new Worker(child);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`an instance process exited (${code}): ${stderr.slice(-1000)}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const message = JSON.parse(line) as { ready?: boolean; id?: number; value?: unknown };
        if (message.ready) return resolve();
        worker.pending.get(message.id!)?.(message.value);
        worker.pending.delete(message.id!);
      });
    });
    return worker;
  }

  call(message: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin.write(`${JSON.stringify({ id, ...message })}\n`);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await exited;
  }
}
