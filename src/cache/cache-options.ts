/**
 * The options of DistributedTokenCache, and their validation: what a user can set, with its
 * defaults, turned into the settings the cache is built from.
 */
import { createHmac } from 'node:crypto';
import Keyv from 'keyv';
import { recordCipherFrom } from '../crypto/record-cipher';
import type { EncryptionOptions, RecordCipher } from '../crypto/record-cipher';
import { InvalidArgumentError } from '../errors';
import {
  optionalPositiveInteger,
  requireNonEmptyString,
  requireObject,
  requireOneOf,
  requirePositiveInteger,
  typeName,
} from '../internal/validate';
import { MemoryLockStore } from '../lock/memory-lock-store';
import type { LockStore } from '../lock/lock-store';
import { DEFAULT_KEY_PREFIX } from '../storage-keys';
import { telemetryFrom } from '../telemetry/options';
import type { TelemetryOptions } from '../telemetry/options';
import type { Telemetry } from '../telemetry/telemetry';
import type { L1Bounds } from './l1/l1-cache';
import type { PartitionKind } from './partition-key';
import { isKeyvRedis } from './redis-partition-store';

/** Time-to-live of partitions per kind (see {@link PartitionKind}); each defaults as in `partitionTtlMs`. */
export interface PartitionTtls {
  /** A signed-in user's tokens (`PartitionKey.forAccount`). @defaultValue 90 days */
  account?: number;
  /** The app's own tokens per tenant, client credentials (`PartitionKey.forApp`). @defaultValue 90 days */
  app?: number;
  /** On-behalf-of tokens per incoming token (`PartitionKey.forOnBehalfOf`). @defaultValue 1 day */
  obo?: number;
}

/** Bounds of the in-process L1 (`DistributedTokenCacheOptions.l1`); the least recently used partition goes first. */
export interface L1Options {
  /** At most this many partitions. @defaultValue 10,000 */
  maxEntries?: number;
  /**
   * At most about this many bytes of heap, as estimated from each partition's size (see
   * docs/token-cache.md, "In-process L1"). @defaultValue 64 MiB (67,108,864)
   */
  maxBytes?: number;
}

/** Options of {@link DistributedTokenCache}. */
export interface DistributedTokenCacheOptions {
  /**
   * Where partitions live. With `@keyv/redis`, writes are an atomic compare-and-set in Lua; with
   * any other Keyv store, they take a lock from `lockStore` (and the cache sets `throwOnErrors` on
   * the Keyv, so that store failures are not mistaken for misses).
   * @defaultValue `new Keyv()` (in memory, this process only)
   */
  store?: Keyv;
  /**
   * Locks for code redemption, and for writes to stores without atomic operations. Share one
   * (RedisLockStore) between all processes that share the store.
   * @defaultValue `new MemoryLockStore()`
   */
  lockStore?: LockStore;
  /** Prefix of every key the library writes. @defaultValue `'msal-dc:'` */
  keyPrefix?: string;
  /**
   * Time-to-live of a partition, renewed with every write (tokens are rewritten at least at every
   * access-token refresh): one number for every partition, or one per kind of partition.
   * @defaultValue `{ account: 90 days, app: 90 days, obo: 1 day }`: an account's refresh token
   * lives up to 90 days; an on-behalf-of partition is keyed by the incoming token, which Entra ID
   * issues for at most a day, so after that no request can ever read it again
   */
  partitionTtlMs?: number | PartitionTtls;
  /**
   * Deadline of every store call. On stores other than Redis, a write that misses it still keeps
   * the partition's lock until the store has applied or refused it (at most 10 times this), so
   * that it cannot land over a newer write (see docs/token-cache.md, "Late writes").
   * @defaultValue 2000
   */
  storeTimeoutMs?: number;
  /**
   * How long a write waits for other writers of the same partition: for the partition's lock
   * (stores without atomic operations), and, on every store, for the compare-and-set rounds it
   * loses to them (with a jittered backoff between rounds). Contention costs latency up to this
   * bound, then `LockTimeoutError`. @defaultValue 5000
   */
  lockWaitTimeoutMs?: number;
  /**
   * A read that fails or times out: `'throw'` a `StoreUnavailableError`, or treat it as a `'miss'`
   * (silent calls then need interaction; client credentials fetch a new token). @defaultValue `'throw'`
   */
  readFailure?: 'throw' | 'miss';
  /**
   * A write that fails or times out: `'throw'` a `StoreUnavailableError` (the tokens of that call
   * are lost), or `'ignore'` it (the caller gets its tokens; other instances do not see them).
   * @defaultValue `'throw'`
   */
  writeFailure?: 'throw' | 'ignore';
  /**
   * Encrypt everything stored (partition contents, redemption outcomes) with AES-256-GCM, bound to
   * its storage key. With it set, a value that does not decrypt (plain text written before
   * encryption was turned on included) is a miss plus `cache:corrupt` with reason
   * `'undecryptable'`. See docs/security.md. @defaultValue none: stored as JSON text
   */
  encryption?: EncryptionOptions;
  /**
   * A secret that keys the hashes naming partitions in storage keys, records and events
   * (`partitionHash`): HMAC-SHA-256 instead of plain SHA-256. Without it, anyone who knows a
   * user's object id and tenant (object ids can be listed by anyone in the tenant) can compute the
   * user's partition hash, and so link keys and events to users. At least 16 bytes (a string of
   * at least 16 characters, or bytes); 32 random bytes recommended, the same on every instance.
   * It is separate from `encryption`'s key ring on purpose: partition names must not change when
   * keys rotate. Setting, changing or removing it moves every partition (every user signs in
   * again). See docs/security.md. @defaultValue none: partition hashes are unkeyed SHA-256
   */
  partitionHashKey?: string | Uint8Array;
  /**
   * The in-process L1: each partition's decoded contents kept in this process in front of Redis,
   * so that a silent call answered from it costs no Redis read. Redis keeps it coherent
   * (server-assisted client-side caching, `CLIENT TRACKING`): another instance's write drops the
   * copy here, and while tracking is not established it is emptied and bypassed, so it never
   * serves what another instance replaced. `false` turns it off. Only for `@keyv/redis` stores:
   * other stores cannot tell this process about other instances' writes, so setting it with them
   * throws (the in-memory `new Keyv()` already is in process). See docs/token-cache.md,
   * "In-process L1".
   * @defaultValue `{ maxEntries: 10_000, maxBytes: 64 MiB }` with a `@keyv/redis` store; none with other stores
   */
  l1?: false | L1Options;
  /**
   * Metrics and traces of the cache's reads and writes, L1 and store errors, through OpenTelemetry
   * (see docs/observability.md). `false` records nothing at all. A DistributedClientApplication
   * without a `telemetry` option of its own uses its cache's.
   * @defaultValue the global providers of `@opentelemetry/api` when it is installed; otherwise nothing
   */
  telemetry?: TelemetryOptions | false;
}

/** Options of {@link DistributedTokenCache.plugin}. */
export interface PluginOptions {
  /**
   * The client id of the MSAL client that uses the plugin: its account partitions (a homeAccountId,
   * or the account a redemption writes) are then its own ({@link PartitionKey.forClient}), as
   * {@link DistributedClientApplication}'s are. Set it whenever apps with different client ids
   * share a store, and to share partitions with a `DistributedClientApplication` of that client id.
   * @defaultValue none: account partitions are shared by every client id using the store
   */
  clientId?: string;
}

/** The validated options, with their defaults. */
export interface CacheSettings {
  store: Keyv;
  lockStore: LockStore;
  /** The Keyv namespace, which the Redis partition store honours (none for Keyv's default). */
  namespace: string | undefined;
  keyPrefix: string;
  partitionTtlMs: Record<PartitionKind, number>;
  readFailure: 'throw' | 'miss';
  writeFailure: 'throw' | 'ignore';
  cipher: RecordCipher | undefined;
  storeTimeoutMs: number;
  lockWaitTimeoutMs: number;
  /** HMAC under `partitionHashKey` (in its closure only, so that inspecting the cache never shows the key). */
  keyedHash: ((value: string) => string) | undefined;
  /** The L1's bounds, or `undefined`: no L1 (turned off, or a store that cannot track changes). */
  l1: L1Bounds | undefined;
  /** What records the cache's metrics and spans; `undefined`: nothing does. */
  telemetry: Telemetry | undefined;
}

/**
 * Validates the options of DistributedTokenCache.
 *
 * @throws InvalidArgumentError naming the bad option
 */
export function cacheSettingsFrom(options: DistributedTokenCacheOptions): CacheSettings {
  requireObject(options, 'options');
  const store = options.store === undefined ? new Keyv() : requireKeyv(options.store);
  const lockStore = options.lockStore === undefined ? new MemoryLockStore() : options.lockStore;
  if (typeof lockStore?.acquire !== 'function' || typeof lockStore.close !== 'function') {
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"options.lockStore" must be a LockStore (MemoryLockStore or RedisLockStore)');
  }
  return {
    store,
    lockStore,
    namespace: namespaceOf(store),
    storeTimeoutMs: optionalPositiveInteger(options.storeTimeoutMs, 'options.storeTimeoutMs', 2000),
    lockWaitTimeoutMs: optionalPositiveInteger(options.lockWaitTimeoutMs, 'options.lockWaitTimeoutMs', 5000),
    keyPrefix: options.keyPrefix === undefined ? DEFAULT_KEY_PREFIX : requireNonEmptyString(options.keyPrefix, 'options.keyPrefix', 128),
    partitionTtlMs: partitionTtlsFrom(options.partitionTtlMs),
    readFailure: requireOneOf(options.readFailure, 'options.readFailure', ['throw', 'miss'], 'throw'),
    writeFailure: requireOneOf(options.writeFailure, 'options.writeFailure', ['throw', 'ignore'], 'throw'),
    cipher: recordCipherFrom(options.encryption, 'options.encryption'),
    keyedHash: keyedHashFrom(options.partitionHashKey),
    l1: l1From(options.l1, isKeyvRedis(store.store)),
    telemetry: telemetryFrom(options.telemetry, 'options.telemetry'),
  };
}

const MIB = 1024 * 1024;
const DEFAULT_L1: L1Bounds = { maxEntries: 10_000, maxBytes: 64 * MIB };

/** The L1's bounds: on by default with Redis, which announces other instances' writes; refused elsewhere. */
function l1From(value: unknown, redis: boolean): L1Bounds | undefined {
  const name = 'options.l1';
  if (value === false) return undefined;
  if (value === undefined) return redis ? DEFAULT_L1 : undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      `"${name}" must be false or an object { maxEntries?, maxBytes? }, got ${typeName(value)}`,
    );
  const bounds = value as L1Options;
  for (const key of Object.keys(bounds)) {
    if (key !== 'maxEntries' && key !== 'maxBytes')
      throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" has an unknown option "${key}"; use maxEntries or maxBytes`);
  }
  const maxEntries = optionalPositiveInteger(bounds.maxEntries, `${name}.maxEntries`, DEFAULT_L1.maxEntries, 'partitions');
  const maxBytes = optionalPositiveInteger(bounds.maxBytes, `${name}.maxBytes`, DEFAULT_L1.maxBytes, 'bytes');
  if (!redis) {
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"${name}" needs a @keyv/redis store: only Redis tells this process when another instance writes a partition, and without that an in-process copy could serve tokens another instance replaced; remove the option (an in-memory Keyv store already is in process)`,
    );
  }
  return { maxEntries, maxBytes };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The Keyv namespace that the Redis partition store honours, as Keyv does for other stores: blue
 * and green deployments of one app on one Redis, each with its own namespace, never share a key.
 * Keyv's default namespace (`'keyv'`) and none add nothing, so keys stay where they were.
 */
function namespaceOf(store: Keyv): string | undefined {
  const namespace = (store as { namespace?: unknown }).namespace;
  return typeof namespace === 'string' && namespace !== '' && namespace !== 'keyv' ? namespace : undefined;
}

const MIN_HASH_KEY_BYTES = 16;

/** HMAC-SHA-256 under the validated `partitionHashKey` (kept in the closure only), first 128 bits, hex. */
function keyedHashFrom(value: unknown): ((text: string) => string) | undefined {
  const name = 'options.partitionHashKey';
  if (value === undefined) return undefined;
  const key = typeof value === 'string' ? Buffer.from(value, 'utf8') : value instanceof Uint8Array ? Buffer.from(value) : undefined;
  if (!key) throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be a string or a Uint8Array, got ${typeName(value)}`);
  if (key.length < MIN_HASH_KEY_BYTES)
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"${name}" must be at least ${MIN_HASH_KEY_BYTES} bytes; use 32 random bytes from your secret store`,
    );
  return (text) => createHmac('sha256', key).update(text, 'utf8').digest('hex').slice(0, 32);
}

/** Duck-typed (a second copy of keyv in node_modules would fail `instanceof`); a bare Map is refused. */
function requireKeyv(store: unknown): Keyv {
  const candidate = store as Partial<Keyv> | null;
  const isKeyv =
    typeof candidate?.get === 'function' &&
    typeof candidate.set === 'function' &&
    typeof candidate.delete === 'function' &&
    typeof candidate.disconnect === 'function' &&
    'store' in candidate;
  if (!isKeyv)
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      '"options.store" must be a Keyv instance (new Keyv({ store: ... })), not a bare store or Map',
    );
  return store as Keyv;
}

const DEFAULT_PARTITION_TTLS: Record<PartitionKind, number> = { account: 90 * DAY_MS, app: 90 * DAY_MS, obo: DAY_MS };

function partitionTtlsFrom(value: unknown): Record<PartitionKind, number> {
  const name = 'options.partitionTtlMs';
  if (value === undefined) return DEFAULT_PARTITION_TTLS;
  if (typeof value === 'number') {
    const ttl = requirePositiveInteger(value, name);
    return { account: ttl, app: ttl, obo: ttl };
  }
  const perKind = requireObject(value as PartitionTtls, name);
  for (const key of Object.keys(perKind)) {
    if (!(key in DEFAULT_PARTITION_TTLS)) {
      throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" has an unknown kind "${key}"; use account, app or obo`);
    }
  }
  return {
    account: optionalPositiveInteger(perKind.account, `${name}.account`, DEFAULT_PARTITION_TTLS.account),
    app: optionalPositiveInteger(perKind.app, `${name}.app`, DEFAULT_PARTITION_TTLS.app),
    obo: optionalPositiveInteger(perKind.obo, `${name}.obo`, DEFAULT_PARTITION_TTLS.obo),
  };
}
