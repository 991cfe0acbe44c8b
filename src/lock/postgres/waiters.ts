/**
 * Waiting for a row to change: one client per store held out of the pool for `LISTEN` on the
 * store's channel (every step that frees or decides a row notifies a hash of its key), waking the
 * waiters on that hash. When the listening connection is lost it is dropped, every waiter
 * re-checks, and the next wait listens again. Each wait also ends after its timeout, and callers
 * poll with a growing interval (capped at `pollIntervalMs`): the safety net under `NOTIFY`.
 */
import { withDeadline } from '../../internal/deadline';
import type { PostgresConnection } from './connection';
import type { PostgresPoolClient } from './options';

export class PostgresWaiters {
  readonly #connection: PostgresConnection;
  readonly #channel: string;
  readonly #commandTimeoutMs: number;
  readonly #pollIntervalMs: number;
  readonly #byHash = new Map<string, Set<() => void>>();
  #listener: Promise<PostgresPoolClient | undefined> | undefined;

  constructor(connection: PostgresConnection, channel: string, options: { commandTimeoutMs: number; pollIntervalMs: number }) {
    this.#connection = connection;
    this.#channel = channel;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#pollIntervalMs = options.pollIntervalMs;
  }

  /** Keys somebody waits on. */
  get keys(): number {
    return this.#byHash.size;
  }

  /** How long to wait before the next poll, after `attempt` polls. */
  pollIntervalMs(attempt: number): number {
    return Math.min(this.#pollIntervalMs, 10 * 2 ** attempt);
  }

  /** Resolves on a notification for `hash`, on close, or after `timeoutMs`. */
  async wait(hash: string, timeoutMs: number): Promise<void> {
    void this.listen(); // best effort: polling still bounds the wait
    await new Promise<void>((resolve) => {
      let waiters = this.#byHash.get(hash);
      if (!waiters) {
        waiters = new Set();
        this.#byHash.set(hash, waiters);
      }
      const set = waiters;
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#byHash.get(hash) === set) this.#byHash.delete(hash);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs).unref();
      set.add(done);
    });
  }

  /** The listening client; undefined when closed or when listening failed (tried again on a later wait). */
  listen(): Promise<PostgresPoolClient | undefined> {
    if (this.#connection.closed) return Promise.resolve(undefined);
    this.#listener ??= (async () => {
      let client: PostgresPoolClient | undefined;
      try {
        client = await this.#connection.checkout(Date.now() + this.#commandTimeoutMs, 'LISTEN');
        const listening = client;
        let lost = false;
        const drop = (): void => {
          if (lost) return;
          lost = true;
          if (this.#current === listening) {
            this.#listener = undefined;
            this.#current = undefined;
          }
          destroy(listening);
          this.#wakeAll(); // a notification may have been missed: every waiter re-checks
        };
        client.on?.('notification', ((message: { channel: string; payload?: string }) => {
          if (message.channel !== this.#channel) return;
          for (const wake of [...(this.#byHash.get(message.payload ?? '') ?? [])]) wake();
        }) as never);
        client.on?.('error', drop as never);
        client.on?.('end', drop as never);
        await withDeadline(client.query(`LISTEN "${this.#channel}"`), this.#commandTimeoutMs, 'PostgreSQL LISTEN');
        if (this.#connection.closed) {
          destroy(client);
          return undefined;
        }
        this.#current = client;
        this.#wakeAll(); // a change notified before LISTEN was missed
        return client;
      } catch {
        if (client) destroy(client);
        this.#listener = undefined;
        return undefined;
      }
    })();
    return this.#listener;
  }

  #current: PostgresPoolClient | undefined;

  /** Wakes every waiter and gives the listening client back (destroyed). */
  async close(): Promise<void> {
    this.#wakeAll();
    const client = await this.#listener?.catch(() => undefined);
    this.#listener = undefined;
    this.#current = undefined;
    if (client) destroy(client);
  }

  #wakeAll(): void {
    for (const waiters of [...this.#byHash.values()]) for (const wake of [...waiters]) wake();
  }
}

const destroyed = new WeakSet<PostgresPoolClient>();

/** Gives a client back to the pool to be destroyed, once (`pg` throws on a second release). */
function destroy(client: PostgresPoolClient): void {
  if (destroyed.has(client)) return;
  destroyed.add(client);
  try {
    client.release(true);
  } catch {
    // already released by the pool
  }
}
