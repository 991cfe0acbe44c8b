/**
 * Waiting for a key to change: one subscriber connection per store on the lock-changes channel
 * (every script that frees or decides a key publishes the key), waking the waiters on that key.
 * Each wait also ends after its timeout, and callers poll with a growing interval (capped at
 * `maxPollIntervalMs`), in case a message is lost or pub/sub is down.
 */
import { withDeadline } from '../../internal/deadline';
import type { RedisConnection, RedisLockClient } from './connection';

export class Waiters {
  readonly #connection: RedisConnection;
  readonly #channel: string;
  readonly #commandTimeoutMs: number;
  readonly #maxPollIntervalMs: number;
  /** Waiters per key, woken by a message on the channel; empty when nobody waits. */
  readonly #byKey = new Map<string, Set<() => void>>();
  #subscriber: Promise<RedisLockClient | undefined> | undefined;

  constructor(connection: RedisConnection, channel: string, options: { commandTimeoutMs: number; maxPollIntervalMs: number }) {
    this.#connection = connection;
    this.#channel = channel;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#maxPollIntervalMs = options.maxPollIntervalMs;
  }

  /** Keys somebody waits on. */
  get keys(): number {
    return this.#byKey.size;
  }

  /** The subscriber connection, while it is being opened or open (the store's tests clean it up). */
  get subscriber(): Promise<RedisLockClient | undefined> | undefined {
    return this.#subscriber;
  }

  /** How long to wait before the next poll, after `attempt` polls. */
  pollIntervalMs(attempt: number): number {
    return Math.min(this.#maxPollIntervalMs, 10 * 2 ** attempt);
  }

  /** Resolves on a message for `key`, on close, or after `timeoutMs`. */
  async wait(key: string, timeoutMs: number): Promise<void> {
    void this.subscribe(); // best effort: polling still bounds the wait when pub/sub is down
    await new Promise<void>((resolve) => {
      let waiters = this.#byKey.get(key);
      if (!waiters) {
        waiters = new Set();
        this.#byKey.set(key, waiters);
      }
      const set = waiters;
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs).unref();
      set.add(done);
    });
  }

  /** The subscriber, subscribed to the channel; undefined when closed, or when subscribing failed (retried on a later wait). */
  subscribe(): Promise<RedisLockClient | undefined> {
    if (this.#connection.closed) return Promise.resolve(undefined);
    this.#subscriber ??= (async () => {
      let subscriber: RedisLockClient | undefined;
      try {
        const client = await this.#connection.connected(Date.now() + this.#commandTimeoutMs);
        if (!client.duplicate) return undefined; // a Sentinel client: polling only
        subscriber = client.duplicate();
        subscriber.on('error', () => undefined);
        await withDeadline(subscriber.connect(), this.#commandTimeoutMs, 'Redis subscriber connect');
        await withDeadline(
          subscriber.subscribe(this.#channel, (key) => {
            for (const wake of [...(this.#byKey.get(key) ?? [])]) wake();
          }),
          this.#commandTimeoutMs,
          'Redis subscribe',
        );
        // A change published before the subscription was ready was missed: let every waiter re-check.
        this.#wakeAll();
        return subscriber;
      } catch {
        subscriber?.destroy();
        this.#subscriber = undefined; // polling covers us; retry subscribing on a later wait
        return undefined;
      }
    })();
    return this.#subscriber;
  }

  /** Wakes every waiter and closes the subscriber connection. */
  async close(): Promise<void> {
    this.#wakeAll();
    const subscriber = await this.#subscriber?.catch(() => undefined);
    subscriber?.destroy();
  }

  #wakeAll(): void {
    for (const waiters of [...this.#byKey.values()]) for (const wake of [...waiters]) wake();
  }
}
