/**
 * RedisLockStore: leases and single-use claims shared by every process that uses the same Redis.
 * Acquire is SET-if-absent with an owner token and a fencing counter; extend, release, complete
 * and settle are Lua scripts that check the owner first (never a bare DEL of a lock). Completion
 * writes the outcome, deletes the lock and publishes on one channel atomically; waiters listen on
 * one subscriber connection per store and also poll with backoff, in case a message is lost.
 * Every key carries a hash tag (`{<key>}`) so one key's records share a Redis Cluster slot, and
 * lives outside any Keyv namespace, so `keyv.clear()` cannot delete a lock.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ClosedError, InvalidArgumentError, LockTimeoutError, StoreUnavailableError } from '../errors';
import { withDeadline } from '../internal/deadline';
import { shortHash } from '../internal/hash';
import { untilReady } from '../internal/redis-ready';
import type { ReadyAwareClient } from '../internal/redis-ready';
import { RedisScript } from '../internal/redis-script';
import { isConnectionReset, notReplicatedError, ReplicaMemory, replicaAcksOption } from './replica-acks';
import type { ReplicationReport } from './replica-acks';
import type { ScriptingClient } from '../internal/redis-script';
import { optionalPositiveInteger, requireNonEmptyString, requireObject, requirePositiveInteger } from '../internal/validate';
import type { Claim, ClaimOptions, Lease, LockOptions, LockStore } from './lock-store';

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

/**
 * Connection options for the client a {@link RedisLockStore} opens from a `url`: node-redis v5's
 * `createClient` options (TLS settings such as `ca`, `cert` and `key` go in `socket`).
 */
export interface RedisConnectionOptions {
  /** ACL user name (or put it in the URL). */
  username?: string;
  /** Password or access key (or percent-encoded in the URL). */
  password?: string;
  /** Database number (standalone Redis only). */
  database?: number;
  /** Client name, shown by `CLIENT LIST`. */
  name?: string;
  /** node-redis socket options: `connectTimeout`, `tls`, `ca`, `cert`, `key`, `servername`, `reconnectStrategy`, ... */
  socket?: object;
  /** @defaultValue true: a command sent while disconnected fails at once instead of being replayed later. */
  disableOfflineQueue?: boolean;
  /** Any other node-redis client option. */
  [option: string]: unknown;
}

/** Options of {@link RedisLockStore}: exactly one of `url` and `client`. */
export interface RedisLockStoreOptions {
  /** A Redis URL (`redis://` or `rediss://` for TLS); the store opens (and closes) its own connections. */
  url?: string;
  /**
   * With `url`: more options of the client the store opens (credentials, database, TLS in
   * `socket`). The store's defaults (`socket.connectTimeout` = `commandTimeoutMs`, a bounded
   * reconnect backoff, `disableOfflineQueue`) apply unless set here.
   */
  clientOptions?: RedisConnectionOptions;
  /**
   * An existing node-redis v5 client (standalone or cluster), for example the one given to
   * `@keyv/redis`. The store connects it if it was never connected (`@keyv/redis` connects
   * lazily), and never closes it.
   */
  client?: RedisLockClient;
  /** Prefix of every key and of the channel. @defaultValue `'msal-dc:'` */
  keyPrefix?: string;
  /**
   * Deadline of every call, from its start: connecting, waiting for a reconnecting client to be
   * ready and the command share it. @defaultValue 2000
   */
  commandTimeoutMs?: number;
  /** Longest pause between two polls while waiting (the safety net under pub/sub). @defaultValue 250 */
  maxPollIntervalMs?: number;
  /**
   * Replicas that must acknowledge a claim (and an outcome) before it counts, with `WAIT`, within
   * the call's `commandTimeoutMs`: replication is asynchronous, and a write only the primary had
   * is gone after a failover, so without this a code claimed just before one could be sent
   * again. When they do not acknowledge in time the call fails with `StoreUnavailableError`
   * (so `lockStoreFailure: 'fail-closed'` refuses, and nothing is sent).
   * - `'auto'`: as many as the primary has (`connected_slaves` in `INFO replication`, read with
   *   each claim), and never fewer than it was seen with under the same replication ID; none
   *   when it has none. With Redis Cluster, per shard.
   * - a number: exactly that many, whatever the primary reports (for example 1 with two replicas,
   *   to keep working while one is down when the failover promotes the most up-to-date one).
   * - `0`: no `WAIT` (a failover can lose claims; see docs/redis.md).
   * @defaultValue 'auto'
   */
  replicaAcks?: 'auto' | number;
}

// Durable writes report the primary's replication (ARGV[#ARGV] == '1'), for replicaAcks 'auto'.
const REPLICATION = `
local function replication()
  if ARGV[#ARGV] ~= '1' then return '', '0' end
  local info = redis.call('INFO', 'replication')
  return string.match(info, 'master_replid:(%w+)') or '', string.match(info, 'connected_slaves:(%d+)') or '0'
end
`;

// acquire: KEYS lock, fence; ARGV token, leaseMs, fenceTtlMs -> fence or 0. Idempotent: a retry
// that finds its own token (the reply to the first try was lost with the connection) holds it.
const ACQUIRE = new RedisScript(`
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then return tonumber(string.sub(held, #ARGV[1] + 2)) end
if held then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
return fence
`);

// claim: KEYS lock, attempt, outcome, fence; ARGV token, leaseMs, recordTtlMs, report
// -> {state, fence or outcome, replid, replicas}. Idempotent: a retry that finds its own token
// holds the claim (and writes, so that a WAIT on a new connection covers the claim too).
const CLAIM = new RedisScript(`${REPLICATION}
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'claimed', string.sub(held, #ARGV[1] + 2), replication()}
end
local outcome = redis.call('GET', KEYS[3])
if outcome then return {'done', outcome} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'busy'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'abandoned'} end
local fence = redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], ARGV[3] * 2)
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
redis.call('SET', KEYS[2], fence, 'PX', ARGV[3])
return {'claimed', tostring(fence), replication()}
`);

// extend: KEYS lock; ARGV owner value, leaseMs -> 1 | 0
const EXTEND = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

// release: KEYS lock; ARGV owner value, channel, key -> 1 | 0
const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`);

// withdraw: KEYS lock, attempt; ARGV owner value, fence, channel, key -> 1 | 0. Gives back a claim
// whose work never started (the code was not sent), or that the replicas did not acknowledge.
const WITHDRAW = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`);

// complete: KEYS lock, outcome; ARGV owner value, fence, outcome, recordTtlMs, channel, key, report
// -> {1 | 0, replid, replicas}. Idempotent: a retry that finds its own outcome recorded succeeds.
const COMPLETE = new RedisScript(`${REPLICATION}
local current = redis.call('GET', KEYS[2])
if current == ARGV[2] .. ':' .. ARGV[3] then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return {1, replication()}
end
if current then
  local currentFence = tonumber(string.match(current, '^(%d+):'))
  if currentFence and currentFence >= tonumber(ARGV[2]) then return {0, replication()} end
end
redis.call('SET', KEYS[2], ARGV[2] .. ':' .. ARGV[3], 'PX', ARGV[4])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, replication()}
`);

// settle: KEYS outcome, fence; ARGV outcome, recordTtlMs, channel, key -> the stored outcome
const SETTLE = new RedisScript(`
local current = redis.call('GET', KEYS[1])
if current then return current end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2] * 2)
local value = fence .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return value
`);

const FENCE_TTL_MS = 24 * 60 * 60 * 1000;

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
  private readonly keyPrefix: string;
  private readonly commandTimeoutMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly replicas: ReplicaMemory;
  /** Durable writes waiting for the next WAIT, while one is in flight. */
  private readonly nextBatch: BatchedWrite[] = [];
  private waitInFlight = false;
  private readonly channel: string;
  private readonly url: string | undefined;
  private readonly clientOptions: RedisConnectionOptions = {};
  /** The last connection error of a client the store connects, kept as the cause of a connect timeout. */
  private lastConnectionError: Error | undefined;
  private watchingGivenClient = false;
  private client: RedisLockClient | undefined;
  private connecting: Promise<RedisLockClient> | undefined;
  private subscriber: Promise<RedisLockClient | undefined> | undefined;
  /** Waiters per key, woken by a message on the channel; empty when nobody waits. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;

  /**
   * Creates the store; connections are opened on first use.
   *
   * @param options - `url` or `client`, and optionally the key prefix and deadlines
   * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_*`) unless exactly one of `url`
   *   and `client` is given, or for a bad option
   */
  constructor(options: RedisLockStoreOptions) {
    requireObject(options, 'options');
    if ((options.url === undefined) === (options.client === undefined)) {
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_VALUE',
        '"options" must have exactly one of "url" (a Redis URL) and "client" (a node-redis client)',
      );
    }
    if (options.url !== undefined) this.url = requireNonEmptyString(options.url, 'options.url');
    if (options.clientOptions !== undefined) {
      if (options.url === undefined) {
        throw new InvalidArgumentError(
          'ERR_INVALID_ARG_VALUE',
          '"options.clientOptions" applies to "url" only; configure a "client" you pass yourself when you create it',
        );
      }
      this.clientOptions = requireObject(options.clientOptions, 'options.clientOptions');
    }
    if (options.client !== undefined && typeof options.client?.evalSha !== 'function') {
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_TYPE',
        '"options.client" must be a node-redis v5 client, for example (keyv.store as KeyvRedis).client',
      );
    }
    this.client = options.client;
    this.keyPrefix = options.keyPrefix === undefined ? 'msal-dc:' : requireNonEmptyString(options.keyPrefix, 'options.keyPrefix', 128);
    this.commandTimeoutMs = optionalPositiveInteger(options.commandTimeoutMs, 'options.commandTimeoutMs', 2000);
    this.maxPollIntervalMs = optionalPositiveInteger(options.maxPollIntervalMs, 'options.maxPollIntervalMs', 250);
    this.replicas = new ReplicaMemory(replicaAcksOption(options.replicaAcks));
    this.channel = `${this.keyPrefix}lock-changes`;
  }

  /** Keys somebody in this process is waiting on (for tests and stats; empty when idle). */
  get waitingKeys(): number {
    return this.waiters.size;
  }

  async acquire(key: string, options: LockOptions): Promise<Lease> {
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const waitTimeoutMs = requirePositiveInteger(options.waitTimeoutMs, 'options.waitTimeoutMs');
    const lockKey = `${this.keyPrefix}lock:{${key}}`;
    const token = randomBytes(12).toString('base64url');
    const deadline = Date.now() + waitTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const fence = Number(
        await this.run(ACQUIRE, [lockKey, `${lockKey}:fence`], [token, String(leaseMs), String(FENCE_TTL_MS)], 'lock acquire'),
      );
      if (fence > 0) return this.lease(key, lockKey, `${token}:${fence}`, fence);
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new LockTimeoutError(
          `lock ${shortHash(key)} (hash) was not free within ${waitTimeoutMs} ms; retry later or raise the wait timeout`,
        );
      await this.waitForChange(key, Math.min(remaining, this.backoff(attempt)));
    }
  }

  async claim(key: string, options: ClaimOptions): Promise<Claim> {
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const recordTtlMs = requirePositiveInteger(options.recordTtlMs, 'options.recordTtlMs');
    const base = `${this.keyPrefix}claim:{${key}}`;
    const token = randomBytes(12).toString('base64url');
    // Durable before it counts: the code leaves the process only once the replicas have the claim.
    const reply = (await this.run(
      CLAIM,
      [`${base}:lock`, `${base}:attempt`, `${base}:outcome`, `${base}:fence`],
      [token, String(leaseMs), String(recordTtlMs), this.reportFlag],
      'claim',
      (claimed: string[]) =>
        claimed[0] === 'claimed'
          ? {
              key: `${base}:lock`,
              ttlMs: leaseMs,
              report: replicationReport(claimed, 2),
              withdraw: (client: RedisLockClient) =>
                WITHDRAW.run(client, [`${base}:lock`, `${base}:attempt`], [`${token}:${claimed[1]}`, claimed[1]!, this.channel, key]),
            }
          : undefined,
    )) as string[];
    switch (reply[0]) {
      case 'done':
        return { state: 'done', outcome: stripFence(reply[1]!) };
      case 'busy':
        return { state: 'busy' };
      case 'abandoned':
        return { state: 'abandoned' };
      default: {
        const fence = Number(reply[1]);
        return { state: 'claimed', lease: this.lease(key, `${base}:lock`, `${token}:${fence}`, fence) };
      }
    }
  }

  async complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean> {
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const owned = lease as RedisLease;
    if (!owned.ownerValue) throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', '"lease" must come from this store\'s claim()');
    const base = `${this.keyPrefix}claim:{${lease.key}}`;
    // Durable too, where it matters for duplicates: a lost outcome leaves them an abandoned claim.
    const reply = (await this.run(
      COMPLETE,
      [`${base}:lock`, `${base}:outcome`],
      [owned.ownerValue, String(lease.fence), outcome, String(recordTtlMs), this.channel, lease.key, this.reportFlag],
      'complete',
      (recorded: unknown[]) =>
        Number(recorded[0]) === 1 ? { key: `${base}:outcome`, ttlMs: recordTtlMs, report: replicationReport(recorded, 1) } : undefined,
    )) as unknown[];
    owned.markEnded();
    return Number(reply[0]) === 1;
  }

  async withdraw(lease: Lease): Promise<boolean> {
    const owned = lease as RedisLease;
    if (!owned.ownerValue) throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', '"lease" must come from this store\'s claim()');
    const base = `${this.keyPrefix}claim:{${lease.key}}`;
    const done = await this.run(
      WITHDRAW,
      [`${base}:lock`, `${base}:attempt`],
      [owned.ownerValue, String(lease.fence), this.channel, lease.key],
      'withdraw',
    );
    owned.markEnded();
    return Number(done) === 1;
  }

  async settle(key: string, outcome: string, recordTtlMs: number): Promise<string> {
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const base = `${this.keyPrefix}claim:{${key}}`;
    const stored = await this.run(
      SETTLE,
      [`${base}:outcome`, `${base}:fence`],
      [outcome, String(recordTtlMs), this.channel, key],
      'settle',
    );
    return stripFence(String(stored));
  }

  async waitForChange(key: string, timeoutMs: number): Promise<void> {
    if (this.closed) throw new ClosedError('this RedisLockStore is closed; create a new one');
    void this.subscribe(); // best effort: polling still bounds the wait when pub/sub is down
    await new Promise<void>((resolve) => {
      let waiters = this.waiters.get(key);
      if (!waiters) {
        waiters = new Set();
        this.waiters.set(key, waiters);
      }
      const set = waiters;
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs).unref();
      set.add(done);
    });
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
    if (this.closed) throw new ClosedError('this RedisLockStore is closed; create a new one');
    const deadlineAt = Date.now() + this.commandTimeoutMs;
    await this.readyClient(deadlineAt);
    // Within the same deadline, not a fresh one; when it fails or is late, waits poll and a later
    // wait subscribes again (it goes on in the background).
    await withDeadline(this.subscribe(), Math.max(1, deadlineAt - Date.now()), 'Redis subscribe').catch(() => undefined);
  }

  /**
   * Closes the connections this store opened (not a `client` it was given), a connection still
   * being opened included: a first connect under way then rejects with `ClosedError`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiters of this.waiters.values()) for (const wake of [...waiters]) wake();
    const subscriber = await this.subscriber?.catch(() => undefined);
    subscriber?.destroy();
    // Not `await this.connecting`: a first connect to a dead server never settles.
    if (this.url !== undefined) this.client?.destroy();
  }

  private backoff(attempt: number): number {
    return Math.min(this.maxPollIntervalMs, 10 * 2 ** attempt);
  }

  private lease(key: string, lockKey: string, ownerValue: string, fence: number): RedisLease {
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
        return Number(await this.run(EXTEND, [lockKey], [ownerValue, String(leaseMs)], 'lock extend')) === 1;
      },
      release: async () => {
        if (ended) return;
        ended = true;
        await this.run(RELEASE, [lockKey], [ownerValue, this.channel, key], 'lock release').catch(() => undefined); // the lease expires anyway
      },
    };
  }

  /** The last argument of the durable scripts: whether they report the primary's replicas. */
  private get reportFlag(): string {
    return this.replicas.reports ? '1' : '0';
  }

  /**
   * One deadline per call, `commandTimeoutMs` from its start: connecting, waiting for a ready
   * client, the command and the replicas' acknowledgement share it, so a call never takes longer
   * whatever step is slow. A connection that resets is not the end: every script is idempotent
   * (a retry finds its own token or outcome), so the call is sent again while time is left.
   */
  private async run<T>(
    script: RedisScript,
    keys: string[],
    args: string[],
    operation: string,
    durable?: (reply: T) => DurableRecord | undefined,
  ): Promise<T> {
    if (this.closed) throw new ClosedError('this RedisLockStore is closed; create a new one');
    const deadlineAt = Date.now() + this.commandTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await this.readyClient(deadlineAt);
        return await withDeadline(
          this.send(client, script, keys, args, operation, deadlineAt, durable),
          this.remainingMs(deadlineAt),
          `Redis ${operation}`,
          this.commandTimeoutMs,
        );
      } catch (error) {
        if (this.closed || !isConnectionReset(error) || Date.now() >= deadlineAt) throw error;
        // The reconnect is under way (readyClient waits for it); a short pause keeps a client
        // that keeps failing from being hammered.
        await delay(Math.min(this.remainingMs(deadlineAt), 5 * 2 ** Math.min(attempt, 6)), undefined, { ref: false });
      }
    }
  }

  private async send<T>(
    client: RedisLockClient,
    script: RedisScript,
    keys: string[],
    args: string[],
    operation: string,
    deadlineAt: number,
    durable: ((reply: T) => DurableRecord | undefined) | undefined,
  ): Promise<T> {
    const reply = (await script.run(client, keys, args, () => Date.now() < deadlineAt)) as T;
    const record = durable?.(reply);
    if (record) await this.replicated(client, record, operation, deadlineAt);
    return reply;
  }

  /**
   * Waits for the replicas to acknowledge `record` within the call's deadline.
   *
   * @throws StoreUnavailableError when fewer than required acknowledge it in time (it is withdrawn)
   */
  private async replicated(client: RedisLockClient, record: DurableRecord, operation: string, deadlineAt: number): Promise<void> {
    const required = this.replicas.required(record.report);
    if (required === 0 || !client.sendCommand) return;
    const replicas = await new Promise<number>((resolve, reject) => {
      this.nextBatch.push({ client, record, required, deadlineAt, resolve, reject });
      if (!this.waitInFlight) void this.sendBatch(false);
    });
    if (replicas >= required && Date.now() < deadlineAt) return;
    // Not durable (or too late for the caller): withdraw the claim (best effort) so that it does
    // not hold the code until its lease expires and then look abandoned.
    record.withdraw?.(client).catch(() => undefined);
    throw notReplicatedError(operation, replicas, required, this.commandTimeoutMs);
  }

  /**
   * One WAIT at a time, for every durable write made meanwhile: a WAIT blocks its connection
   * until it returns, so WAITs sent one per call would block it in turn, each for its whole
   * timeout, while the replicas lag. The writes that queued behind a WAIT the replicas did not
   * answer in time fail at once.
   */
  private async sendBatch(afterMiss: boolean): Promise<void> {
    const batch = this.nextBatch.splice(0);
    if (batch.length === 0) {
      this.waitInFlight = false;
      return;
    }
    this.waitInFlight = true;
    let missed = false;
    if (afterMiss) {
      for (const waiter of batch) waiter.resolve(0);
    } else {
      const counts = await this.waitForReplicas(batch).catch((error: unknown) => {
        for (const waiter of batch) waiter.reject(error); // a reset: each call retries while its deadline allows
        return undefined;
      });
      batch.forEach((waiter, index) => {
        if (!counts) return;
        if (counts[index]! < waiter.required) missed = true;
        waiter.resolve(counts[index]!);
      });
    }
    await this.sendBatch(missed);
  }

  /**
   * `WAIT` on the connection that wrote the records, after rewriting each (PEXPIRE) in the same
   * pipeline: WAIT counts this connection's writes, so the rewrites make it cover the records even
   * when the connection is new since the scripts ran, and a reset in between fails them all. A
   * record already gone (a failover since) counts as acknowledged by none. A cluster gets a WAIT
   * per record, on its shard's connection.
   */
  private async waitForReplicas(batch: BatchedWrite[]): Promise<number[]> {
    const command = (client: RedisLockClient, key: string, args: string[]): Promise<unknown> => {
      const send = client.sendCommand as unknown as (...params: unknown[]) => Promise<unknown>;
      return Array.isArray(client.masters) ? send.call(client, key, false, args) : send.call(client, args);
    };
    // Its answer arrives before the deadlines: Redis times blocked commands out on its event loop
    // (up to 100 ms late at the default hz 10).
    const remainingMs = Math.min(...batch.map((waiter) => waiter.deadlineAt)) - Date.now();
    const waitMs = String(Math.max(1, remainingMs - Math.min(200, Math.floor(remainingMs / 4))));
    const rewrite = (waiter: BatchedWrite): Promise<unknown> =>
      command(waiter.client, waiter.record.key, ['PEXPIRE', waiter.record.key, String(waiter.record.ttlMs)]);
    const client = batch[0]!.client;
    if (Array.isArray(client.masters)) {
      return Promise.all(
        batch.map(async (waiter) => {
          const [present, acknowledged] = await Promise.all([
            rewrite(waiter),
            command(waiter.client, waiter.record.key, ['WAIT', String(waiter.required), waitMs]),
          ]);
          return Number(present) === 1 ? Number(acknowledged) : 0;
        }),
      );
    }
    const required = Math.max(...batch.map((waiter) => waiter.required));
    const present = batch.map(rewrite);
    const acknowledged = Number(await command(client, '', ['WAIT', String(required), waitMs]));
    return (await Promise.all(present)).map((reply) => (Number(reply) === 1 ? acknowledged : 0));
  }

  /** What is left of a call's deadline; at least 1 ms, so that a late step still fails by the timer. */
  private remainingMs(deadlineAt: number): number {
    return Math.max(1, deadlineAt - Date.now());
  }

  /** The connected client; while it (re)connects, or a cluster discovers its slots, waits for it (within the deadline) rather than fail at once. */
  private async readyClient(deadlineAt: number): Promise<RedisLockClient> {
    const client = await this.connected(deadlineAt);
    await untilReady(client, deadlineAt - Date.now(), 'Redis connect', this.commandTimeoutMs).catch((error: unknown) => {
      throw this.withConnectionCause(error);
    });
    return client;
  }

  private async connected(deadlineAt: number): Promise<RedisLockClient> {
    if (this.client && this.url === undefined) {
      // A client that was never connected (KeyvRedis connects on its first command): connect it,
      // or every command would wait for a 'ready' that never comes.
      if (this.client.isOpen === false) this.connectGiven(this.client);
      return this.client;
    }
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined; // try again on the next call
      throw error;
    });
    return withDeadline(this.connecting, this.remainingMs(deadlineAt), 'Redis connect', this.commandTimeoutMs).catch((error: unknown) => {
      if ((error as Error).cause instanceof ClosedError) throw (error as Error).cause; // closed, not unavailable
      throw this.withConnectionCause(error);
    });
  }

  private connectGiven(client: RedisLockClient): void {
    // An 'error' event without a listener would crash the process; once, however often connecting is retried.
    if (!this.watchingGivenClient) this.watchConnectionErrors(client);
    this.watchingGivenClient = true;
    client.connect().catch(() => undefined); // commands wait for 'ready' within their deadline
  }

  private async open(): Promise<RedisLockClient> {
    const { createClient } = await import('@keyv/redis');
    // close() may have run while the module loaded: it found no client to destroy, so open none.
    if (this.closed) throw new ClosedError('this RedisLockStore is closed; create a new one');
    const { socket, ...options } = this.clientOptions;
    const client = createClient({
      disableOfflineQueue: true, // a command sent while disconnected fails instead of being replayed later
      ...options,
      url: this.url!,
      socket: {
        connectTimeout: this.commandTimeoutMs,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
        ...socket,
      },
    }) as unknown as RedisLockClient;
    this.watchConnectionErrors(client); // failures surface as typed errors from the commands
    this.client = client; // known before it connects, so that close() can stop its reconnecting
    await client.connect();
    if (this.closed) {
      if (client.isOpen !== false) client.destroy(); // closed while connecting: close() may have missed it
      throw new ClosedError('this RedisLockStore is closed; create a new one');
    }
    return client;
  }

  private watchConnectionErrors(client: RedisLockClient): void {
    client.on('error', (error) => {
      this.lastConnectionError = error;
    });
    client.on('ready', () => {
      this.lastConnectionError = undefined;
    });
  }

  /** A connect timeout says why (refused, TLS certificate, authentication) when the client told us. */
  private withConnectionCause(error: unknown): unknown {
    const last = this.lastConnectionError;
    if (!(error instanceof StoreUnavailableError) || error.cause !== undefined || last === undefined) return error;
    return new StoreUnavailableError(`${error.message} (last connection error: ${last.name}: ${last.message})`, { cause: last });
  }

  private subscribe(): Promise<RedisLockClient | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    this.subscriber ??= (async () => {
      let subscriber: RedisLockClient | undefined;
      try {
        const client = await this.connected(Date.now() + this.commandTimeoutMs);
        if (!client.duplicate) return undefined; // a Sentinel client: polling only
        subscriber = client.duplicate();
        subscriber.on('error', () => undefined);
        await withDeadline(subscriber.connect(), this.commandTimeoutMs, 'Redis subscriber connect');
        await withDeadline(
          subscriber.subscribe(this.channel, (key) => {
            for (const wake of [...(this.waiters.get(key) ?? [])]) wake();
          }),
          this.commandTimeoutMs,
          'Redis subscribe',
        );
        // A change published before the subscription was ready was missed: let every waiter re-check.
        for (const waiters of [...this.waiters.values()]) for (const wake of [...waiters]) wake();
        return subscriber;
      } catch {
        subscriber?.destroy();
        this.subscriber = undefined; // polling covers us; retry subscribing on a later wait
        return undefined;
      }
    })();
    return this.subscriber;
  }
}

/** A record that must survive a failover before the call succeeds. */
interface DurableRecord {
  /** Its key (the WAIT goes to the shard that has it). */
  key: string;
  /** Its expiry, set again by the rewrite that makes WAIT cover it. */
  ttlMs: number;
  /** The primary's replicas, as the script saw them. */
  report: ReplicationReport;
  /** Takes it back when the replicas did not acknowledge it. */
  withdraw?(client: RedisLockClient): Promise<unknown>;
}

/** A durable write waiting for the replicas. */
interface BatchedWrite {
  client: RedisLockClient;
  record: DurableRecord;
  required: number;
  deadlineAt: number;
  resolve(acknowledged: number): void;
  reject(error: unknown): void;
}

/** The replication part of a durable script's reply, from `index` on. */
function replicationReport(reply: unknown[], index: number): ReplicationReport {
  return { replid: String(reply[index] ?? ''), connectedReplicas: Number(reply[index + 1] ?? 0) };
}

interface RedisLease extends Lease {
  readonly ownerValue: string;
  markEnded(): void;
}

/** Outcomes are stored as `<fence>:<outcome>`. */
function stripFence(stored: string): string {
  return stored.slice(stored.indexOf(':') + 1);
}
