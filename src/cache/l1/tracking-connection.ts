/**
 * One Redis connection that tells the L1 what other connections change: RESP3, `CLIENT TRACKING`
 * in BCAST mode on one key prefix, NOLOOP. It lives from one connect to the first sign that it may
 * have missed a message (an error, the end of the socket, a reconnect, a heartbeat or a command
 * that did not answer within its deadline); then it calls `lost` once and is done: its owner
 * (./redis-invalidations.ts) builds a new one. It never reconnects by itself, so "tracking" always
 * means "on this socket, since its tracking command was answered".
 */
import { withDeadline } from '../../internal/deadline';
import type { RedisScriptingClient } from '../redis-partition-store';

/** The node-redis v5 client (RESP3, `emitInvalidate`) a tracking connection runs on. */
export interface TrackingClient extends RedisScriptingClient {
  isOpen: boolean;
  isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
  unref(): void;
  on(event: string, listener: (arg: unknown) => void): unknown;
}

/** What a tracking connection reports to its owner. */
export interface TrackingHooks {
  /** A key under the prefix changed (its Redis name), or `null`: everything may have changed (FLUSHALL, FLUSHDB). */
  invalidate(redisKey: string | null): void;
  /** It may have missed an invalidation; called once, synchronously with the event that says so. */
  lost(): void;
}

export interface TrackingOptions {
  /** The Redis key prefix to track (namespace included). */
  prefix: string;
  /** Deadline of each command (connect, tracking, heartbeat). */
  timeoutMs: number;
  /** How often a tracking connection proves it still answers (PING). */
  heartbeatMs: number;
}

export class TrackingConnection {
  #state: 'opening' | 'tracking' | 'ended' = 'opening';
  #heartbeat: NodeJS.Timeout | undefined;
  #pinging = false;
  readonly #hooks: TrackingHooks;
  readonly #options: TrackingOptions;

  constructor(
    /** The connection, new and not connected: this object owns it. */
    readonly client: TrackingClient,
    hooks: TrackingHooks,
    options: TrackingOptions,
  ) {
    this.#hooks = hooks;
    this.#options = options;
    client.on('invalidate', (key) => hooks.invalidate(key === null ? null : String(key)));
    for (const event of ['error', 'end', 'reconnecting']) client.on(event, () => this.#lose());
  }

  /** Tracking on this socket, and the socket ready: what it writes is NOLOOP. */
  get tracking(): boolean {
    return this.#state === 'tracking' && this.client.isReady;
  }

  /**
   * Connects, then replaces the default tracking that `emitInvalidate` turns on in the handshake
   * with BCAST on the prefix (a mode change needs OFF first). Resolves once tracking; rejects (and
   * reports `lost`) when any step fails or misses its deadline.
   */
  async open(): Promise<void> {
    const { prefix, timeoutMs } = this.#options;
    try {
      await withDeadline(this.client.connect(), timeoutMs, 'Redis tracking connect');
      await withDeadline(this.client.sendCommand(['CLIENT', 'TRACKING', 'OFF']), timeoutMs, 'Redis CLIENT TRACKING OFF');
      await withDeadline(
        this.client.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', prefix, 'NOLOOP']),
        timeoutMs,
        'Redis CLIENT TRACKING ON',
      );
    } catch (error) {
      this.#lose();
      throw error;
    }
    if (this.#state !== 'opening') throw new Error('the tracking connection was lost while it opened');
    this.#state = 'tracking';
    this.#heartbeat = setInterval(() => void this.#beat(), this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** Sends one command on the tracking connection within the deadline (a failure loses it). */
  async command(args: string[], operation: string): Promise<unknown> {
    try {
      return await withDeadline(this.client.sendCommand(args), this.#options.timeoutMs, operation);
    } catch (error) {
      this.#lose();
      throw error;
    }
  }

  /** Ends it without reporting `lost` (its owner's decision); bounded by the deadline. */
  async end(): Promise<void> {
    this.#stop();
    if (!this.client.isOpen) return;
    try {
      await withDeadline(this.client.close(), this.#options.timeoutMs, 'Redis tracking disconnect');
    } catch {
      if (this.client.isOpen) this.client.destroy();
    }
  }

  /** A silent socket (a paused server, a network partition) delivers no invalidation either. */
  async #beat(): Promise<void> {
    if (this.#pinging || this.#state !== 'tracking') return;
    this.#pinging = true;
    try {
      await this.command(['PING'], 'Redis tracking heartbeat');
    } catch {
      // lost already
    } finally {
      this.#pinging = false;
    }
  }

  #lose(): void {
    if (this.#state === 'ended') return;
    this.#stop();
    this.#hooks.lost();
  }

  #stop(): void {
    this.#state = 'ended';
    clearInterval(this.#heartbeat);
  }
}
