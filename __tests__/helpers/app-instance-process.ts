// Drives __tests__/fixtures/app-instance.ts: one app instance per OS process, for claims about
// several processes. Calls are JSON lines; every child shares the fake Entra ID and Redis.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { FakeEntraId } from '../../src/testing';
import { fixture } from './processes';

export interface CallResult {
  ok: boolean;
  value?: unknown;
  error?: { name?: string; code?: string; errorCode?: string; message?: string };
}

/**
 * What a child reports as it happens (see the fixture): a flight or redeem-once event, or what a
 * claim found (`claim`: a round of a token flight; `redeem-claim`: an authorization code).
 */
export interface ChildEvent {
  event:
    | 'claim'
    | 'redeem-claim'
    | 'flight:held'
    | 'flight:waited'
    | 'flight:taken-over'
    | 'flight:uncoordinated'
    | 'redeem:redeemed'
    | 'redeem:joined'
    | 'redeem:waited'
    | 'redeem:answered-from-cache'
    | 'redeem:refused'
    | 'redeem:unlocked'
    | 'redeem:corrupt';
  /** For `claim` and `redeem-claim`: `claimed`, `busy`, `done` or `abandoned`. */
  state?: string;
  /** For flight events: the flight's grant. */
  grant?: string;
  /** For `redeem:refused`: why. */
  reason?: string;
}

export interface AppInstanceOptions {
  /** A Redis Cluster's root nodes (`RedisCluster.rootNodes`): both stores on it instead of REDIS_URL's server. */
  clusterRootNodes?: { url: string }[];
}

export class AppInstanceProcess {
  private nextId = 0;
  private readonly pending = new Map<number, (result: CallResult) => void>();
  private readonly listeners = new Set<(event: ChildEvent) => void>();
  private stderr = '';
  /** Resolves once the process has exited, however. */
  readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(
    entra: FakeEntraId,
    keyPrefix: string,
    extraEnv: NodeJS.ProcessEnv = {},
    options: AppInstanceOptions = {},
  ): Promise<AppInstanceProcess> {
    const { auth } = entra.msalConfig();
    const child = spawn(process.execPath, ['--import', 'tsx', fixture('app-instance.ts')], {
      env: {
        ...process.env,
        AUTHORITY: auth.authority,
        CLIENT_ID: auth.clientId,
        CLIENT_SECRET: auth.clientSecret,
        KNOWN_AUTHORITY: entra.host,
        KEY_PREFIX: keyPrefix,
        ...(options.clusterRootNodes && { REDIS_CLUSTER_NODES: options.clusterRootNodes.map((node) => node.url).join(',') }),
        ...extraEnv,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const instance = new AppInstanceProcess(child);
    child.stderr.on('data', (chunk: Buffer) => (instance.stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      child.once('exit', (code) => reject(new Error(`app instance exited (${code}) before it was ready: ${instance.stderr.slice(-2000)}`)));
      lines.on('line', (line) => {
        const message = JSON.parse(line) as { ready?: boolean; id?: number } & CallResult & Partial<ChildEvent>;
        if (message.ready) return resolve();
        if (message.event) return instance.listeners.forEach((listener) => listener(message as ChildEvent));
        instance.pending.get(message.id!)?.(message);
        instance.pending.delete(message.id!);
      });
    });
    return instance;
  }

  get pid(): number {
    return this.child.pid!;
  }

  call(op: string, args: Record<string, unknown>): Promise<CallResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, resolve);
      this.child.stdin.write(`${JSON.stringify({ id, op, args })}\n`, (error) => error && reject(error));
    });
  }

  /** Tells `listener` of every event the process reports from now on; returns the unsubscribe. */
  onEvent(listener: (event: ChildEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Kills the process with SIGKILL. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Ends the process by closing its stdin and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    await this.exited;
  }
}
