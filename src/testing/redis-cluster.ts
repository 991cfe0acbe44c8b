/**
 * A real Redis Cluster for tests: three (or more) `redis-server` masters on free loopback ports,
 * joined with `redis-cli --cluster create`, no replicas, persistence off. Needs `redis-server` and
 * `redis-cli` (Debian: packages `redis-server` and `redis-tools`) on PATH, Redis 7 or later.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { findFreePort, RedisServer } from './redis-server';

const run = promisify(execFile);

/** Runs `redis-cli` (the command `cli`) with `args` and returns what it printed. */
async function redisCli(cli: string, args: string[], timeoutMs = 10_000): Promise<string> {
  try {
    const { stdout, stderr } = await run(cli, args, { timeout: timeoutMs });
    return `${stdout}${stderr}`;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new Error(`redis-cli was not found (${cli}); install it (Debian/Ubuntu: apt-get install redis-tools)`, { cause: error });
    }
    throw new Error(`${cli} ${args.join(' ')} failed: ${failure.message} ${failure.stdout ?? ''}${failure.stderr ?? ''}`.trim(), {
      cause: error,
    });
  }
}

/**
 * A Redis Cluster of real `redis-server` processes on 127.0.0.1 (three masters, no replicas).
 *
 * @example
 * ```ts
 * import { createCluster } from '@keyv/redis';
 *
 * const cluster = await RedisCluster.start();
 * const client = createCluster({ rootNodes: cluster.rootNodes });
 * await client.connect();
 * const lockStore = new RedisLockStore({ client });
 * // ...
 * client.destroy();
 * await cluster.stop();
 * ```
 */
export class RedisCluster {
  #stopped = false;

  readonly #directory: string;
  readonly #cli: string;
  private constructor(
    /** The masters, in the order they were given to `redis-cli --cluster create`. */
    readonly servers: readonly RedisServer[],
    directory: string,
    cli: string,
  ) {
    this.#directory = directory;
    this.#cli = cli;
  }

  /** The masters as node-redis `createCluster({ rootNodes })` wants them. */
  get rootNodes(): {
    /** `redis://127.0.0.1:<port>` */
    url: string;
  }[] {
    return this.servers.map((server) => ({ url: server.url }));
  }

  /**
   * Starts the masters, creates the cluster and resolves once every node reports
   * `cluster_state:ok`.
   *
   * @param options.masters - number of masters (at least 3, as `redis-cli --cluster create` needs) @defaultValue 3
   * @param options.readyAttempts - `CLUSTER INFO` polls before giving up @defaultValue 100
   * @param options.redisCli - the `redis-cli` command or path @defaultValue `'redis-cli'` (from PATH)
   * @throws Error when `redis-cli` is missing, a server does not start or the cluster does not form
   */
  static async start(options: { masters?: number; readyAttempts?: number; redisCli?: string } = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    if (!Number.isInteger(masters) || masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
    const cli = options.redisCli ?? 'redis-cli';
    await redisCli(cli, ['--version']); // fails with a clear message when redis-cli is not installed
    const directory = mkdtempSync(join(tmpdir(), 'msal-distributed-cache-cluster-'));
    const servers: RedisServer[] = [];
    const cluster = new RedisCluster(servers, directory, cli);
    const used = new Set<number>();
    const freshPort = async (): Promise<number> => {
      let port = await findFreePort();
      while (used.has(port)) port = await findFreePort(); // a port just handed out is free again until bound
      used.add(port);
      return port;
    };
    try {
      for (let index = 0; index < masters; index++) {
        const port = await freshPort();
        // The bus port defaults to port + 10000, which may not exist for an ephemeral port.
        const busPort = await freshPort();
        servers.push(
          await RedisServer.start({
            port,
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              join(directory, `nodes-${port}.conf`),
              '--cluster-port',
              String(busPort),
              '--cluster-node-timeout',
              '2000',
              '--dir',
              directory,
            ],
          }),
        );
      }
      await redisCli(
        cli,
        ['--cluster', 'create', ...servers.map((server) => `127.0.0.1:${server.port}`), '--cluster-replicas', '0', '--cluster-yes'],
        60_000,
      );
      await cluster.#waitUntilOk(options.readyAttempts ?? 100);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Polls `CLUSTER INFO` on every node until all report `cluster_state:ok`. */
  async #waitUntilOk(attempts: number): Promise<void> {
    let last = '';
    for (let attempt = 0; attempt < attempts; attempt++) {
      const infos = await Promise.all(
        this.servers.map((server) => redisCli(this.#cli, ['-h', '127.0.0.1', '-p', String(server.port), 'cluster', 'info'])),
      );
      if (infos.every((info) => /^cluster_state:ok\r?$/m.test(info))) return;
      last = infos.find((info) => !/^cluster_state:ok\r?$/m.test(info)) ?? '';
      await delay(Math.min(50 * (attempt + 1), 500));
    }
    throw new Error(`the Redis Cluster did not reach cluster_state:ok after ${attempts} polls: ${last.slice(0, 500)}`);
  }

  /** Stops every server and removes the cluster's files. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.allSettled(this.servers.map((server) => server.stop()));
    rmSync(this.#directory, { recursive: true, force: true });
  }
}
