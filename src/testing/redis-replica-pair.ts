/**
 * A Redis primary with one replica behind one endpoint, for failover tests: what a managed Redis
 * (Azure Cache for Redis Standard/Premium, Azure Managed Redis, Sentinel behind a proxy) looks
 * like from a client. The replica replicates through a proxy of its own, so a test can cut the
 * replication link and make writes the primary acknowledged really get lost in a failover.
 */
import { spawn } from 'node:child_process';
import { RedisServer } from './redis-server';
import { TcpProxy } from './tcp-proxy';

/**
 * A primary and a replica (real `redis-server` processes on 127.0.0.1) behind one endpoint
 * ({@link url}). Needs `redis-server` and `redis-cli` on PATH.
 *
 * @example
 * ```ts
 * const pair = await RedisReplicaPair.start();
 * const lockStore = new RedisLockStore({ url: pair.url });
 * pair.cutReplication();   // writes from now on stay on the primary
 * await pair.failover();   // promote the replica, kill the primary, switch and reset the endpoint
 * await pair.stop();
 * ```
 */
export class RedisReplicaPair {
  private constructor(
    /** The server clients reach first; killed by {@link failover}. */
    readonly primary: RedisServer,
    /** The replica; the primary after {@link failover}. */
    readonly replica: RedisServer,
    /** The endpoint clients connect to ({@link url}). */
    readonly endpoint: TcpProxy,
    /** The replication link: the replica connects to the primary through it. */
    readonly link: TcpProxy,
  ) {}

  /** Starts both servers and resolves once the replica has synchronised with the primary. */
  static async start(): Promise<RedisReplicaPair> {
    const primary = await RedisServer.start();
    const link = await TcpProxy.start({ targetPort: primary.port });
    // Diskless sync without the default 5 s delay, loaded straight from the socket: the replica is
    // in sync at once and writes no dump.rdb to the working directory.
    const replica = await RedisServer.start({
      args: [
        '--replicaof',
        '127.0.0.1',
        String(link.port),
        '--repl-diskless-sync',
        'yes',
        '--repl-diskless-sync-delay',
        '0',
        '--repl-diskless-load',
        'on-empty-db',
      ],
    });
    const endpoint = await TcpProxy.start({ targetPort: primary.port });
    const pair = new RedisReplicaPair(primary, replica, endpoint, link);
    await pair.untilReplicated();
    return pair;
  }

  /** `redis://127.0.0.1:<port>`: the endpoint, wherever it points. */
  get url(): string {
    return this.endpoint.url;
  }

  /**
   * Resolves once the replica has acknowledged every write the primary had so far (`WAIT 1`).
   *
   * @throws Error when it does not within `timeoutMs`
   */
  async untilReplicated(timeoutMs = 10_000): Promise<void> {
    // A write of our own first, on the same connection: WAIT counts acknowledgements of the
    // connection's writes (and, the replication stream being ordered, of every earlier one).
    const replies = await cli(
      this.primary.port,
      [
        ['SET', 'replica-pair:probe', '1'],
        ['WAIT', '1', String(timeoutMs)],
      ],
      timeoutMs + 1000,
    );
    if (Number(replies.at(-1)) < 1) throw new Error(`the replica did not acknowledge the primary within ${timeoutMs} ms`);
  }

  /** Cuts the replication link (held, not closed): writes from now on reach only the primary. */
  cutReplication(): void {
    this.link.pause();
  }

  /** Restores the replication link: the replica catches up. */
  restoreReplication(): void {
    this.link.resume();
  }

  /**
   * Fails over as a managed Redis does: the replica becomes the primary (`REPLICAOF NO ONE`),
   * the old primary dies (SIGKILL) with whatever it had not replicated, and the endpoint points
   * to the new primary and resets every client connection.
   */
  async failover(): Promise<void> {
    await cli(this.replica.port, [['REPLICAOF', 'NO', 'ONE']]);
    await this.primary.kill();
    await this.link.close();
    this.endpoint.switchTo(this.replica.port);
    this.endpoint.resetConnections();
  }

  /** Stops both servers and both proxies. */
  async stop(): Promise<void> {
    await this.endpoint.close();
    await this.link.close();
    await Promise.all([this.primary.stop(), this.replica.stop()]);
  }
}

/** Runs `commands` on one `redis-cli` connection to `port`; one reply line per command. */
async function cli(port: number, commands: string[][], timeoutMs = 10_000): Promise<string[]> {
  const child = spawn('redis-cli', ['-p', String(port)], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`could not run redis-cli (is it installed?): ${error.message}`)));
    child.once('close', resolve);
  });
  child.stdin.end(commands.map((command) => command.join(' ')).join('\n') + '\n');
  const code = await exited;
  if (code !== 0) throw new Error(`redis-cli -p ${port} failed (${code}): ${output.slice(-500)}`);
  return output.trim().split('\n');
}
