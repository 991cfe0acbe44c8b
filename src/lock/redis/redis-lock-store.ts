/**
 * RedisLockStore: leases and single-use claims shared by every process that uses the same Redis.
 * This file is the protocol; its parts are beside it: scripts.ts (the Lua, one atomic step each),
 * connection.ts, waiters.ts (pub/sub and polling), replica-acks.ts (WAIT) and options.ts. Acquire
 * is SET-if-absent with an owner token and a fencing counter; the other steps check the owner
 * first (never a bare DEL of a lock). Keys carry a hash tag (`{<key>}`: one Redis Cluster slot per
 * key) and live outside any Keyv namespace, so `keyv.clear()` cannot delete a lock.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { InvalidArgumentError, LockTimeoutError } from '../../errors';
import { remainingMs, withDeadline } from '../../internal/deadline';
import { shortHash } from '../../internal/hash';
import { requireNonEmptyString, requirePositiveInteger } from '../../internal/validate';
import { lockChangesChannel, redisClaimKeys, redisLeaseKeys } from '../../storage-keys';
import type { Claim, ClaimOptions, Lease, LockOptions, LockStore } from '../lock-store';
import { closedError, isConnectionReset, RedisConnection } from './connection';
import type { RedisLockClient } from './connection';
import { resolveOptions } from './options';
import type { RedisLockStoreOptions } from './options';
import { DurableWrites } from './replica-acks';
import type { DurableRecord } from './replica-acks';
import * as scripts from './scripts';
import { Waiters } from './waiters';

export type { RedisLockClient } from './connection';
export type { RedisConnectionOptions, RedisLockStoreOptions } from './options';

const FENCE_TTL_MS = 24 * 60 * 60 * 1000;

/** A lease of this store: its owner value (`<token>:<fence>`) is what the scripts check. */
interface RedisLease extends Lease {
  readonly ownerValue: string;
  markEnded(): void;
}

/** A script call, given the ready client and whether the EVAL fallback may still be sent. */
type ScriptSend<T> = (client: RedisLockClient, inTime: () => boolean) => Promise<T>;

/** Each store's parts, for the store's own tests (which watch and clean up its connections); not exported by the package. */
const internals = new WeakMap<RedisLockStore, { connection: RedisConnection; waiters: Waiters }>();

/** The connection and the waiters of `store` (for its tests). */
export function redisLockStoreInternals(store: RedisLockStore): { connection: RedisConnection; waiters: Waiters } {
  return internals.get(store)!;
}

/**
 * A lock store in Redis, shared by every process that uses the same Redis: what makes redeem-once
 * work across instances. Give the same one (the same Redis) to every instance's
 * {@link DistributedTokenCache}.
 *
 * @example
 * ```ts
 * const lockStore = new RedisLockStore({ url: 'redis://localhost:6379' });
 * const cache = new DistributedTokenCache({ store, lockStore });
 * ```
 *
 * @example
 * With a client of your own (required for a Redis Cluster), for example the one `@keyv/redis` uses:
 * ```ts
 * import KeyvRedis, { createClient } from '@keyv/redis';
 *
 * const redis = createClient({ url: 'redis://localhost:6379' });
 * await redis.connect();
 * const cache = new DistributedTokenCache({
 *   store: new Keyv({ store: new KeyvRedis(redis) }),
 *   lockStore: new RedisLockStore({ client: redis }), // not closed by the store: redis.destroy() when done
 * });
 * ```
 */
export class RedisLockStore implements LockStore {
  readonly #keyPrefix: string;
  readonly #commandTimeoutMs: number;
  readonly #channel: string;
  readonly #connection: RedisConnection;
  readonly #waiters: Waiters;
  readonly #durable: DurableWrites;

  /**
   * Creates the store; connections are opened on first use.
   *
   * @param options - `url` or `client`, and optionally the key prefix and deadlines
   * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_*`) unless exactly one of `url`
   *   and `client` is given, or for a bad option
   */
  constructor(options: RedisLockStoreOptions) {
    const resolved = resolveOptions(options);
    this.#keyPrefix = resolved.keyPrefix;
    this.#commandTimeoutMs = resolved.commandTimeoutMs;
    this.#channel = lockChangesChannel(resolved.keyPrefix);
    this.#connection = new RedisConnection(resolved, resolved.commandTimeoutMs);
    this.#waiters = new Waiters(this.#connection, this.#channel, resolved);
    this.#durable = new DurableWrites(resolved.replicaAcks, resolved.commandTimeoutMs);
    internals.set(this, { connection: this.#connection, waiters: this.#waiters });
  }

  /** Keys somebody in this process is waiting on (for tests and stats; empty when idle). */
  get waitingKeys(): number {
    return this.#waiters.keys;
  }

  async acquire(key: string, options: LockOptions): Promise<Lease> {
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const waitTimeoutMs = requirePositiveInteger(options.waitTimeoutMs, 'options.waitTimeoutMs');
    const keys = redisLeaseKeys(this.#keyPrefix, key);
    const token = randomBytes(12).toString('base64url');
    const deadline = Date.now() + waitTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const fence = await this.#run('lock acquire', (client, inTime) =>
        scripts.acquire(client, keys, { token, leaseMs, fenceTtlMs: FENCE_TTL_MS }, inTime),
      );
      if (fence > 0) return this.#lease(key, keys.lock, `${token}:${fence}`, fence);
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new LockTimeoutError(
          `lock ${shortHash(key)} (hash) was not free within ${waitTimeoutMs} ms; retry later or raise the wait timeout`,
        );
      await this.waitForChange(key, Math.min(remaining, this.#waiters.pollIntervalMs(attempt)));
    }
  }

  async claim(key: string, options: ClaimOptions): Promise<Claim> {
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const recordTtlMs = requirePositiveInteger(options.recordTtlMs, 'options.recordTtlMs');
    const keys = redisClaimKeys(this.#keyPrefix, key);
    const token = randomBytes(12).toString('base64url');
    // Durable before it counts: the code leaves the process only once the replicas have the claim.
    const reply = await this.#run(
      'claim',
      (client, inTime) => scripts.claim(client, keys, { token, leaseMs, recordTtlMs, report: this.#durable.reportFlag }, inTime),
      (claimed) =>
        claimed.state === 'claimed'
          ? {
              key: keys.lock,
              ttlMs: leaseMs,
              report: claimed.report,
              withdraw: (client: RedisLockClient) =>
                scripts.withdraw(client, keys, { owner: `${token}:${claimed.fence}`, fence: claimed.fence, ...this.#publish(key) }),
            }
          : undefined,
    );
    if (reply.state !== 'claimed') return reply;
    return { state: 'claimed', lease: this.#lease(key, keys.lock, `${token}:${reply.fence}`, reply.fence) };
  }

  async complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean> {
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const owned = ownLease(lease);
    const keys = redisClaimKeys(this.#keyPrefix, lease.key);
    const args = {
      owner: owned.ownerValue,
      fence: lease.fence,
      outcome,
      recordTtlMs,
      report: this.#durable.reportFlag,
      ...this.#publish(lease.key),
    };
    // Durable too, where it matters for duplicates: a lost outcome leaves them an abandoned claim.
    const reply = await this.#run(
      'complete',
      (client, inTime) => scripts.complete(client, keys, args, inTime),
      (recorded) => (recorded.recorded ? { key: keys.outcome, ttlMs: recordTtlMs, report: recorded.report } : undefined),
    );
    owned.markEnded();
    return reply.recorded;
  }

  async withdraw(lease: Lease): Promise<boolean> {
    const owned = ownLease(lease);
    const keys = redisClaimKeys(this.#keyPrefix, lease.key);
    const done = await this.#run('withdraw', (client, inTime) =>
      scripts.withdraw(client, keys, { owner: owned.ownerValue, fence: lease.fence, ...this.#publish(lease.key) }, inTime),
    );
    owned.markEnded();
    return done;
  }

  async settle(key: string, outcome: string, recordTtlMs: number): Promise<string> {
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const keys = redisClaimKeys(this.#keyPrefix, key);
    return this.#run('settle', (client, inTime) => scripts.settle(client, keys, { outcome, recordTtlMs, ...this.#publish(key) }, inTime));
  }

  async waitForChange(key: string, timeoutMs: number): Promise<void> {
    if (this.#connection.closed) throw closedError();
    await this.#waiters.wait(key, timeoutMs);
  }

  /**
   * Connects now instead of on first use: the commands connection, then (best effort, within the
   * same `commandTimeoutMs`) the subscriber that wakes waiters. For a start-up or readiness check.
   *
   * @throws StoreUnavailableError when Redis does not answer within `commandTimeoutMs`, naming the
   *   last connection error (refused, certificate, authentication)
   * @throws ClosedError after {@link close}
   */
  async connect(): Promise<void> {
    if (this.#connection.closed) throw closedError();
    const deadlineAt = Date.now() + this.#commandTimeoutMs;
    await this.#connection.ready(deadlineAt);
    // Within the same deadline, not a fresh one; when it fails or is late, waits poll and a later
    // wait subscribes again (it goes on in the background).
    await withDeadline(this.#waiters.subscribe(), remainingMs(deadlineAt), 'Redis subscribe').catch(() => undefined);
  }

  /**
   * Closes the connections this store opened (not a `client` it was given), a connection still
   * being opened included: a first connect under way then rejects with `ClosedError`. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#connection.markClosed()) return;
    await this.#waiters.close();
    this.#connection.destroyOwnClient();
  }

  /** The arguments that make a script announce that `key` changed. */
  #publish(key: string): { channel: string; message: string } {
    return { channel: this.#channel, message: key };
  }

  #lease(key: string, lockKey: string, ownerValue: string, fence: number): RedisLease {
    let ended = false;
    return {
      key,
      fence,
      ownerValue,
      markEnded: () => {
        ended = true;
      },
      extend: async (leaseMs: number) => {
        requirePositiveInteger(leaseMs, 'leaseMs');
        if (ended) return false;
        return this.#run('lock extend', (client, inTime) =>
          scripts.extend(client, { lock: lockKey }, { owner: ownerValue, leaseMs }, inTime),
        );
      },
      release: async () => {
        if (ended) return;
        ended = true;
        await this.#run('lock release', (client, inTime) =>
          scripts.release(client, { lock: lockKey }, { owner: ownerValue, ...this.#publish(key) }, inTime),
        ).catch(() => undefined); // the lease expires anyway
      },
    };
  }

  /**
   * One deadline per call, `commandTimeoutMs` from its start: connecting, waiting for a ready
   * client, the command and the replicas' acknowledgement share it, so a call never takes longer
   * whatever step is slow. A connection that resets is not the end: every script is idempotent
   * (a retry finds its own token or outcome), so the call is sent again while time is left.
   */
  async #run<T>(operation: string, send: ScriptSend<T>, durable?: (reply: T) => DurableRecord | undefined): Promise<T> {
    if (this.#connection.closed) throw closedError();
    const deadlineAt = Date.now() + this.#commandTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await this.#connection.ready(deadlineAt);
        return await withDeadline(
          this.#send(client, send, operation, deadlineAt, durable),
          remainingMs(deadlineAt),
          `Redis ${operation}`,
          this.#commandTimeoutMs,
        );
      } catch (error) {
        if (this.#connection.closed || !isConnectionReset(error) || Date.now() >= deadlineAt) throw error;
        // The reconnect is under way (ready() waits for it); a short pause keeps a client that
        // keeps failing from being hammered.
        await delay(Math.min(remainingMs(deadlineAt), 5 * 2 ** Math.min(attempt, 6)), undefined, { ref: false });
      }
    }
  }

  async #send<T>(
    client: RedisLockClient,
    send: ScriptSend<T>,
    operation: string,
    deadlineAt: number,
    durable: ((reply: T) => DurableRecord | undefined) | undefined,
  ): Promise<T> {
    const reply = await send(client, () => Date.now() < deadlineAt);
    const record = durable?.(reply);
    if (record) await this.#durable.replicated(client, record, operation, deadlineAt);
    return reply;
  }
}

/** `lease` as one of this store's leases (a lease of another store has no owner value). */
function ownLease(lease: Lease): RedisLease {
  const owned = lease as RedisLease;
  if (!owned.ownerValue) throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', '"lease" must come from this store\'s claim()');
  return owned;
}
