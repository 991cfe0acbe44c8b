/**
 * The lock store's commands connection: a client it opens itself from `url` (and closes), or a
 * client it was given (connected if it never was, never closed). A call waits for the client to
 * be ready within its deadline (src/internal/redis-ready.ts, shared with the Redis partition
 * store), and a connect that times out names the last connection error the client reported.
 */
import { ClosedError, StoreUnavailableError } from '../../errors';
import { withDeadline, remainingMs } from '../../internal/deadline';
import { readyWithin } from '../../internal/redis-ready';
import type { ReadyAwareClient } from '../../internal/redis-ready';
import type { ScriptingClient } from '../../internal/redis-script';
import type { RedisConnectionOptions } from './options';

/**
 * The subset of a node-redis v5 client (`createClient()`, or `createCluster()` for a Redis Cluster)
 * that the lock store uses.
 */
export interface RedisLockClient extends ScriptingClient, ReadyAwareClient {
  /** Connects: the store's own clients and subscriber, and a given client that was never connected. */
  connect(): Promise<unknown>;
  /**
   * A new client with the same options: the store's subscriber connection. Without it (a Redis
   * Sentinel client), waiters only poll.
   */
  duplicate?(): RedisLockClient;
  /** Subscribes to a channel (the subscriber connection only). */
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  /** Listens to connection errors (the store's own connections: errors surface from commands instead). */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Listens to the client becoming usable (clears the remembered connection error). */
  on(event: 'ready', listener: () => void): unknown;
  /** Closes the connection at once (only the connections the store opened itself). */
  destroy(): void;
  /**
   * Sends a raw command: `WAIT` after a claim (see `replicaAcks`). node-redis: `(args)` on a
   * client, `(firstKey, isReadonly, args)` on a cluster, which sends it to the key's shard.
   */
  sendCommand?(...args: never[]): Promise<unknown>;
}

/** The error of every call after `close()`. */
export function closedError(): ClosedError {
  return new ClosedError('this RedisLockStore is closed; create a new one');
}

/** A connection that reset or was not connected: the command may be sent again on the next one. */
export function isConnectionReset(error: unknown): boolean {
  const cause = error instanceof StoreUnavailableError && error.cause !== undefined ? error.cause : error;
  // Not `instanceof Error`: socket errors may come from another realm (a test sandbox, a worker).
  if (typeof cause !== 'object' || cause === null) return false;
  const { code, message } = cause as { code?: unknown; message?: unknown };
  return (
    ['SocketClosedUnexpectedlyError', 'ClientOfflineError'].includes(cause.constructor?.name) ||
    (typeof code === 'string' && ['ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(code)) ||
    /Socket closed unexpectedly|client is offline|ECONNRESET|EPIPE/.test(String(message))
  );
}

/** The client of one lock store, opened on first use. */
export class RedisConnection {
  readonly #url: string | undefined;
  readonly #clientOptions: RedisConnectionOptions;
  readonly #budgetMs: number;
  /** The last connection error of a client the store connects, kept as the cause of a connect timeout. */
  #lastConnectionError: Error | undefined;
  #watchingGivenClient = false;
  #client: RedisLockClient | undefined;
  #connecting: Promise<RedisLockClient> | undefined;
  #closed = false;

  /** @param budgetMs - `commandTimeoutMs`: the connect timeout of a client it opens, and the deadline named in errors */
  constructor(
    options: { url: string | undefined; clientOptions: RedisConnectionOptions; client: RedisLockClient | undefined },
    budgetMs: number,
  ) {
    this.#url = options.url;
    this.#clientOptions = options.clientOptions;
    this.#client = options.client;
    this.#budgetMs = budgetMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The client, once there is one (the store's tests watch it). */
  get client(): RedisLockClient | undefined {
    return this.#client;
  }

  /** The first connect of a client opened from `url`, while there is one (the store's tests clean it up). */
  get connecting(): Promise<RedisLockClient> | undefined {
    return this.#connecting;
  }

  /** The connected client; while it (re)connects, or a cluster discovers its slots, waits for it (within the deadline) rather than fail at once. */
  ready(deadlineAt: number): Promise<RedisLockClient> {
    return readyWithin(this.#opening(), deadlineAt, this.#budgetMs).catch((error: unknown) => {
      throw this.#explained(error);
    });
  }

  /** The client, connected but perhaps not ready (to duplicate it). */
  connected(deadlineAt: number): Promise<RedisLockClient> {
    return withDeadline(this.#opening(), remainingMs(deadlineAt), 'Redis connect', this.#budgetMs).catch((error: unknown) => {
      throw this.#explained(error);
    });
  }

  /** Refuses further use; `false` when it was closed already. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Destroys the client it opened (a connection still being opened included), never a given one. */
  destroyOwnClient(): void {
    // Not `await this.#connecting`: a first connect to a dead server never settles.
    if (this.#url !== undefined) this.#client?.destroy();
  }

  /** A given client (connected if it never was), or the connect of the client opened from `url`. */
  #opening(): Promise<RedisLockClient> {
    if (this.#client && this.#url === undefined) {
      // A client that was never connected (KeyvRedis connects on its first command): connect it,
      // or every command would wait for a 'ready' that never comes.
      if (this.#client.isOpen === false) this.#connectGiven(this.#client);
      return Promise.resolve(this.#client);
    }
    this.#connecting ??= this.#open().catch((error: unknown) => {
      this.#connecting = undefined; // try again on the next call
      throw error;
    });
    return this.#connecting;
  }

  #connectGiven(client: RedisLockClient): void {
    // An 'error' event without a listener would crash the process; once, however often connecting is retried.
    if (!this.#watchingGivenClient) this.#watchConnectionErrors(client);
    this.#watchingGivenClient = true;
    client.connect().catch(() => undefined); // commands wait for 'ready' within their deadline
  }

  async #open(): Promise<RedisLockClient> {
    const { createClient } = await import('@keyv/redis');
    // close() may have run while the module loaded: it found no client to destroy, so open none.
    if (this.#closed) throw closedError();
    const { socket, ...options } = this.#clientOptions;
    const client = createClient({
      disableOfflineQueue: true, // a command sent while disconnected fails instead of being replayed later
      ...options,
      url: this.#url!,
      socket: {
        connectTimeout: this.#budgetMs,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
        ...socket,
      },
    }) as unknown as RedisLockClient;
    this.#watchConnectionErrors(client); // failures surface as typed errors from the commands
    this.#client = client; // known before it connects, so that close() can stop its reconnecting
    await client.connect();
    if (this.#closed) {
      if (client.isOpen !== false) client.destroy(); // closed while connecting: close() may have missed it
      throw closedError();
    }
    return client;
  }

  #watchConnectionErrors(client: RedisLockClient): void {
    client.on('error', (error) => {
      this.#lastConnectionError = error;
    });
    client.on('ready', () => {
      this.#lastConnectionError = undefined;
    });
  }

  /**
   * A connect that failed because the store was closed is a ClosedError, not unavailable; a
   * connect timeout says why (refused, TLS certificate, authentication) when the client told us.
   */
  #explained(error: unknown): unknown {
    if ((error as Error | undefined)?.cause instanceof ClosedError) return (error as Error).cause;
    const last = this.#lastConnectionError;
    if (!(error instanceof StoreUnavailableError) || error.cause !== undefined || last === undefined) return error;
    return new StoreUnavailableError(`${error.message} (last connection error: ${last.name}: ${last.message})`, { cause: last });
  }
}
