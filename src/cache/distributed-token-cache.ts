/**
 * DistributedTokenCache: MSAL's token cache in any Keyv store, one partition per account (or app,
 * or on-behalf-of assertion), shared by every instance of the app. Owns the store adapter, the
 * failure policy, encryption at rest and the events; MSAL clients reach it through `plugin()`.
 */
import { createHmac } from 'node:crypto';
import Keyv from 'keyv';
import type { ICachePlugin } from '@azure/msal-node';
import { recordCipherFrom } from '../crypto/record-cipher';
import type { EncryptionOptions, RecordCipher } from '../crypto/record-cipher';
import { ClosedError, InvalidArgumentError, MsalDistributedCacheError, StoreUnavailableError } from '../errors';
import { SafeEmitter } from '../events';
import type { TokenCacheEvents } from '../events';
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
import { PartitionCachePlugin } from './cache-plugin';
import { KeyvPartitionStore } from './keyv-partition-store';
import { PartitionKey } from './partition-key';
import type { PartitionKind } from './partition-key';
import { PartitionRepository } from './partition-repository';
import type { PartitionStore } from './partition-store';
import { isKeyvRedis, RedisPartitionStore } from './redis-partition-store';

/** Time-to-live of partitions per kind (see {@link PartitionKind}); each defaults as in `partitionTtlMs`. */
export interface PartitionTtls {
  /** A signed-in user's tokens (`PartitionKey.forAccount`). @defaultValue 90 days */
  account?: number;
  /** The app's own tokens per tenant, client credentials (`PartitionKey.forApp`). @defaultValue 90 days */
  app?: number;
  /** On-behalf-of tokens per incoming token (`PartitionKey.forOnBehalfOf`). @defaultValue 1 day */
  obo?: number;
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

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A token cache shared by every instance of an app: MSAL's token cache in a Keyv store, one
 * partition per account (or app, or on-behalf-of assertion). Give it to a
 * {@link DistributedClientApplication}, or use {@link plugin} with MSAL clients of your own. Emits
 * the {@link TokenCacheEvents}; see docs/token-cache.md.
 *
 * @example
 * ```ts
 * import Keyv from 'keyv';
 * import KeyvRedis from '@keyv/redis';
 *
 * const cache = new DistributedTokenCache({
 *   store: new Keyv({ store: new KeyvRedis('redis://localhost:6379') }), // default: in memory, one process
 *   lockStore: new RedisLockStore({ url: 'redis://localhost:6379' }), // default: MemoryLockStore
 *   readFailure: 'throw',
 * });
 * cache.on('store:error', ({ operation, code }) => console.warn(`token store ${operation} failed: ${code}`));
 * const msal = new DistributedClientApplication({ auth }, { cache });
 * ```
 */
export class DistributedTokenCache extends SafeEmitter<TokenCacheEvents> {
  /** The lock store (shared with redeem-once). */
  readonly lockStore: LockStore;
  /** @internal */
  readonly repository: PartitionRepository;
  private readonly partitionStore: PartitionStore;
  private readonly keyPrefix: string;
  private readonly cipher: RecordCipher | undefined;
  /** HMAC under `partitionHashKey` (in its closure only, so that inspecting the cache never shows the key). */
  private readonly keyedHash: ((value: string) => string) | undefined;
  private closed = false;

  /**
   * Creates the cache; the store is connected by Keyv on first use.
   *
   * @param options - the store, the lock store, the failure policies, encryption
   * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE`)
   *   naming the bad option
   */
  constructor(options: DistributedTokenCacheOptions = {}) {
    super();
    requireObject(options, 'options');
    const store = options.store === undefined ? new Keyv() : requireKeyv(options.store);
    const lockStore = options.lockStore === undefined ? new MemoryLockStore() : options.lockStore;
    if (typeof lockStore?.acquire !== 'function' || typeof lockStore.close !== 'function') {
      throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"options.lockStore" must be a LockStore (MemoryLockStore or RedisLockStore)');
    }
    const storeTimeoutMs = optionalPositiveInteger(options.storeTimeoutMs, 'options.storeTimeoutMs', 2000);
    const lockWaitTimeoutMs = optionalPositiveInteger(options.lockWaitTimeoutMs, 'options.lockWaitTimeoutMs', 5000);
    const policy = {
      keyPrefix: options.keyPrefix === undefined ? 'msal-dc:' : requireNonEmptyString(options.keyPrefix, 'options.keyPrefix', 128),
      partitionTtlMs: partitionTtlsFrom(options.partitionTtlMs),
      readFailure: requireOneOf(options.readFailure, 'options.readFailure', ['throw', 'miss'], 'throw'),
      writeFailure: requireOneOf(options.writeFailure, 'options.writeFailure', ['throw', 'ignore'], 'throw'),
      cipher: recordCipherFrom(options.encryption, 'options.encryption'),
      contentionTimeoutMs: lockWaitTimeoutMs,
    };
    this.lockStore = lockStore;
    this.partitionStore = isKeyvRedis(store.store)
      ? new RedisPartitionStore(store.store, storeTimeoutMs, namespaceOf(store))
      : new KeyvPartitionStore(store, lockStore, { storeTimeoutMs, lockWaitTimeoutMs });
    this.repository = new PartitionRepository(this.partitionStore, this, policy);
    this.keyPrefix = policy.keyPrefix;
    this.cipher = policy.cipher;
    this.keyedHash = keyedHashFrom(options.partitionHashKey);
  }

  /** `true` when partitions are written with an atomic compare-and-set (Redis), not under a lock. */
  get atomicWrites(): boolean {
    return this.partitionStore instanceof RedisPartitionStore;
  }

  /**
   * An MSAL cache plugin bound to one partition, for apps that build their own
   * `ConfidentialClientApplication` per request. Use one client per partition: a client's
   * in-memory cache must never hold two users.
   *
   * @param partitionKey - a `PartitionKey`, or a homeAccountId; omit it only for
   *   `acquireTokenByCode`, where the partition is taken from the account MSAL writes
   * @param options - `clientId`: keep account partitions apart per app (see {@link PluginOptions})
   * @returns the plugin for `{ cache: { cachePlugin } }`
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for an empty or malformed key
   * @throws ClosedError after {@link close}
   *
   * @example
   * ```ts
   * import { ConfidentialClientApplication } from '@azure/msal-node';
   *
   * // A client per request, bound to the partition of the signed-in account:
   * const cachePlugin = cache.plugin(homeAccountId, { clientId: auth.clientId });
   * const client = new ConfidentialClientApplication({ auth, cache: { cachePlugin } });
   * const account = await client.getTokenCache().getAccountByHomeId(homeAccountId);
   * if (account) await client.acquireTokenSilent({ account, scopes: ['User.Read'] });
   * ```
   */
  plugin(partitionKey?: PartitionKey | string, options: PluginOptions = {}): ICachePlugin {
    this.assertOpen();
    requireObject(options, 'options');
    const clientId = options.clientId === undefined ? undefined : requireNonEmptyString(options.clientId, 'options.clientId', 512);
    const scope = (key: PartitionKey): PartitionKey => this.named(key, clientId);
    return new PartitionCachePlugin(
      this.repository,
      partitionKey === undefined ? undefined : scope(PartitionKey.from(partitionKey)),
      false,
      scope,
    );
  }

  /** @internal A plugin for one operation of DistributedClientApplication (reads once), for its client id. */
  operationPlugin(partitionKey: PartitionKey | undefined, clientId: string): PartitionCachePlugin {
    this.assertOpen();
    const scope = (key: PartitionKey): PartitionKey => this.named(key, clientId);
    return new PartitionCachePlugin(this.repository, partitionKey === undefined ? undefined : scope(partitionKey), true, scope);
  }

  /**
   * A partition as this cache stores it: an account's kept apart for `clientId` when given, and
   * named by the keyed hash when `partitionHashKey` is set (so that every key, record, event and
   * error below carries that hash, never the unkeyed one).
   */
  private named(partition: PartitionKey, clientId: string | undefined): PartitionKey {
    const key = clientId === undefined ? partition : partition.forClient(clientId);
    return this.keyedHash ? key.withHash(this.keyedHash(key.value)) : key;
  }

  /**
   * The hash that names a partition in this cache's storage keys and events (`partitionHash`):
   * keyed with `partitionHashKey` when it is set, otherwise {@link PartitionKey.hash}. Use it to
   * find a user's partition or events when you know the user (support, audits).
   *
   * @param partitionKey - a `PartitionKey`, or a homeAccountId
   * @returns 32 hex characters
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for an empty or malformed key
   *
   * @example
   * ```ts
   * const partitionHash = cache.partitionHash(PartitionKey.forAccount(homeAccountId).forClient(clientId));
   * cache.on('cache:corrupt', (event) => event.partitionHash === partitionHash && console.warn(`unusable partition ${partitionHash}`));
   * ```
   */
  partitionHash(partitionKey: PartitionKey | string): string {
    return this.named(PartitionKey.from(partitionKey), undefined).hash;
  }

  /**
   * @internal A small string record beside the partitions (redeem-once keeps outcomes here);
   * `undefined` when absent or, with encryption on, when it does not decrypt.
   */
  async readRecord(name: string): Promise<string | undefined> {
    const key = `${this.keyPrefix}${name}`;
    const value = await this.partitionStore.getValue(key);
    return value === undefined || !this.cipher ? value : this.cipher.open(value, key);
  }

  /** @internal */
  async writeRecord(name: string, value: string, ttlMs: number): Promise<void> {
    const key = `${this.keyPrefix}${name}`;
    return this.partitionStore.setValue(key, this.cipher ? this.cipher.seal(value, key) : value, ttlMs);
  }

  /** @internal Seals a value stored outside the token store (lock-store outcomes) when encryption is on. */
  sealValue(value: string, context: string): string {
    return this.cipher ? this.cipher.seal(value, context) : value;
  }

  /** @internal `undefined` when the value does not open (tampered, foreign, or plaintext while encrypting). */
  openValue(value: string, context: string): string | undefined {
    return this.cipher ? this.cipher.open(value, context) : value;
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new ClosedError('this DistributedTokenCache is closed; create a new one');
  }

  /**
   * Connects the token store and the lock store now instead of on first use, each within its
   * deadline, so that start-up (or a readiness check) fails when one cannot be reached rather
   * than the first user's request. Reads one key that is never written. Stores other than Redis
   * report a failure only as far as their Keyv adapter does.
   *
   * @throws StoreUnavailableError when a store does not answer within its deadline
   * @throws ClosedError after {@link close}
   *
   * @example
   * ```ts
   * await cache.connect(); // before the server starts listening
   * ```
   */
  async connect(): Promise<void> {
    this.assertOpen();
    await Promise.all([this.partitionStore.getValue(`${this.keyPrefix}connect-check`), this.lockStore.connect?.()]);
  }

  /**
   * Disconnects the store and closes the lock store. Idempotent; never hangs on a store that is
   * down (failures are reported as `store:error` events with `operation: 'close'`).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const results = await Promise.allSettled([this.partitionStore.close(), this.lockStore.close()]);
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      const error =
        result.reason instanceof MsalDistributedCacheError
          ? result.reason
          : new StoreUnavailableError(`closing the store failed: ${String(result.reason)}`, { cause: result.reason });
      this.safeEmit('store:error', { operation: 'close', code: error.code, outcome: 'ignored', error });
    }
  }
}

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
