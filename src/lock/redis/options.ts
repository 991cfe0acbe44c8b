/** The options of RedisLockStore: their types (public) and their validation. */
import { InvalidArgumentError } from '../../errors';
import { optionalPositiveInteger, requireNonEmptyString, requireObject } from '../../internal/validate';
import { DEFAULT_KEY_PREFIX } from '../../storage-keys';
import type { RedisLockClient } from './connection';
import { replicaAcksOption } from './replica-acks';
import type { ReplicaAcks } from './replica-acks';

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

/** The options, checked, with their defaults. */
export interface ResolvedOptions {
  url: string | undefined;
  clientOptions: RedisConnectionOptions;
  client: RedisLockClient | undefined;
  keyPrefix: string;
  commandTimeoutMs: number;
  maxPollIntervalMs: number;
  replicaAcks: ReplicaAcks;
}

/**
 * Checks the options (in this order: the first bad one is reported) and fills in the defaults.
 *
 * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_*`) unless exactly one of `url`
 *   and `client` is given, or for a bad option
 */
export function resolveOptions(options: RedisLockStoreOptions): ResolvedOptions {
  requireObject(options, 'options');
  if ((options.url === undefined) === (options.client === undefined)) {
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_VALUE',
      '"options" must have exactly one of "url" (a Redis URL) and "client" (a node-redis client)',
    );
  }
  const url = options.url === undefined ? undefined : requireNonEmptyString(options.url, 'options.url');
  let clientOptions: RedisConnectionOptions = {};
  if (options.clientOptions !== undefined) {
    if (options.url === undefined) {
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_VALUE',
        '"options.clientOptions" applies to "url" only; configure a "client" you pass yourself when you create it',
      );
    }
    clientOptions = requireObject(options.clientOptions, 'options.clientOptions');
  }
  if (options.client !== undefined && typeof options.client?.evalSha !== 'function') {
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      '"options.client" must be a node-redis v5 client, for example (keyv.store as KeyvRedis).client',
    );
  }
  return {
    url,
    clientOptions,
    client: options.client,
    keyPrefix: options.keyPrefix === undefined ? DEFAULT_KEY_PREFIX : requireNonEmptyString(options.keyPrefix, 'options.keyPrefix', 128),
    commandTimeoutMs: optionalPositiveInteger(options.commandTimeoutMs, 'options.commandTimeoutMs', 2000),
    maxPollIntervalMs: optionalPositiveInteger(options.maxPollIntervalMs, 'options.maxPollIntervalMs', 250),
    replicaAcks: replicaAcksOption(options.replicaAcks),
  };
}
