/**
 * Real `redis-server` processes for tests: started on a free loopback port with persistence off,
 * and killable, pausable (SIGSTOP) and restartable, for fault tests. Needs `redis-server` on PATH.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Finds a free TCP port on 127.0.0.1. */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * One `redis-server` process, for tests: persistence off, on 127.0.0.1, killable, pausable and
 * restartable. Needs `redis-server` on PATH.
 *
 * @example
 * ```ts
 * const redis = await RedisServer.start();
 * const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(redis.url) }), storeTimeoutMs: 500 });
 * redis.pause(); // calls now fail with StoreUnavailableError after 500 ms
 * redis.resume();
 * await cache.close();
 * await redis.stop();
 * ```
 */
export class RedisServer {
  #process: ChildProcess | undefined;

  readonly #extraArgs: string[];
  private constructor(
    /** The port it listens on, on 127.0.0.1. */
    readonly port: number,
    extraArgs: string[],
  ) {
    this.#extraArgs = extraArgs;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The server's process id, while it runs. */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /**
   * Starts a server and resolves once it accepts connections.
   *
   * @param options.port - a fixed port @defaultValue a free one
   * @param options.args - extra `redis-server` arguments
   */
  static async start(options: { port?: number; args?: string[] } = {}): Promise<RedisServer> {
    const server = new RedisServer(options.port ?? (await findFreePort()), options.args ?? []);
    await server.#spawn();
    return server;
  }

  async #spawn(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      ...this.#extraArgs,
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#process = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          child.stdout!.off('data', onData);
          child.stdout!.resume(); // keep draining so the pipe never fills
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.resume();
      child.once('error', (error) => reject(new Error(`could not start redis-server (is it installed?): ${error.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready: ${output.slice(-500)}`)));
    });
  }

  /** Kills the server with SIGKILL and waits for it to exit. */
  async kill(): Promise<void> {
    await this.#signalAndWait('SIGKILL');
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  /** Thaws a paused server (SIGCONT). */
  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Starts the server again on the same port (after {@link kill} or {@link stop}). */
  async restart(): Promise<void> {
    if (this.#process) await this.stop();
    await this.#spawn();
  }

  /** Stops the server (SIGCONT, then SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    this.resume();
    await this.#signalAndWait('SIGTERM');
  }

  async #signalAndWait(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }
}
