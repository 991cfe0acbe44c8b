/**
 * DistributedTokenCache: MSAL's token cache in any Keyv store, one partition per account (or app,
 * or on-behalf-of assertion), shared by every instance of the app. Owns the store adapter, the
 * failure policy, encryption at rest, the in-process L1 and what keeps it coherent, and the events.
 * Its users see only the public API; the client and redeem-once reach the rest through the seam in
 * ./cache-internals.
 */
import { EventEmitter } from 'node:events';
import type { ICachePlugin } from '@azure/msal-node';
import { ClosedError, MsalDistributedCacheError, StoreUnavailableError } from '../errors';
import { sinkOf } from '../events';
import type { EventSink, TokenCacheEvents } from '../events';
import { requireNonEmptyString, requireObject } from '../internal/validate';
import type { LockStore } from '../lock/lock-store';
import { connectCheckKey, partitionKeysPrefix } from '../storage-keys';
import { exposeInternals } from './cache-internals';
import { PartitionCachePlugin } from './cache-plugin';
import { cacheSettingsFrom } from './cache-options';
import type { DistributedTokenCacheOptions, PluginOptions } from './cache-options';
import { KeyvPartitionStore } from './keyv-partition-store';
import { L1Cache } from './l1/l1-cache';
import { RedisInvalidations } from './l1/redis-invalidations';
import { reportingSink } from './l1/reporting-sink';
import { PartitionKey, withKeyedHash } from './partition-key';
import { PartitionRepository } from './partition-repository';
import type { Snapshot } from './partition-repository';
import type { PartitionStore } from './partition-store';
import { TracedPartitionRepository } from './traced-repository';
import { isKeyvRedis, RedisPartitionStore } from './redis-partition-store';
import { isKeyvPostgres, PostgresPartitionStore } from './postgres-partition-store';

export type { DistributedTokenCacheOptions, L1Options, PartitionTtls, PluginOptions } from './cache-options';

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
export class DistributedTokenCache extends EventEmitter<TokenCacheEvents> {
  /** The lock store (shared with redeem-once). */
  readonly lockStore: LockStore;
  readonly #partitionStore: PartitionStore;
  readonly #repository: PartitionRepository;
  /** Keeps the L1 coherent (Redis client-side tracking); none without an L1. */
  readonly #invalidations: RedisInvalidations | undefined;
  /** HMAC under `partitionHashKey` (in its closure only, so that inspecting the cache never shows the key). */
  readonly #keyedHash: ((value: string) => string) | undefined;
  readonly #keyPrefix: string;
  /** The cache's events, with telemetry's tap when it is on. */
  readonly #events: EventSink<TokenCacheEvents>;
  /** Ends the L1's observation by telemetry (none without both). */
  readonly #stopObservingL1: (() => void) | undefined;
  #closed = false;

  /**
   * Creates the cache; the store is connected by Keyv on first use.
   *
   * @param options - the store, the lock store, the failure policies, encryption
   * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE`)
   *   naming the bad option
   */
  constructor(options: DistributedTokenCacheOptions = {}) {
    super();
    const settings = cacheSettingsFrom(options);
    const { store, storeTimeoutMs, lockWaitTimeoutMs } = settings;
    this.lockStore = settings.lockStore;
    const { telemetry } = settings;
    const events = telemetry ? telemetry.tap(sinkOf(this)) : sinkOf(this);
    this.#events = events;
    const redis = isKeyvRedis(store.store) ? store.store : undefined;
    // settings.l1 is set only for Redis stores: the only ones that announce other instances' writes.
    const l1 = redis && settings.l1 ? new L1Cache<Snapshot>(settings.l1) : undefined;
    const invalidations =
      redis && l1
        ? new RedisInvalidations(redis, reportingSink(l1, events, settings.keyPrefix), {
            trackedPrefix: partitionKeysPrefix(settings.keyPrefix),
            namespace: settings.namespace,
            timeoutMs: storeTimeoutMs,
          })
        : undefined;
    this.#invalidations = invalidations;
    this.#partitionStore = redis
      ? new RedisPartitionStore(
          redis,
          storeTimeoutMs,
          settings.namespace,
          invalidations && { writeClient: () => invalidations.writeClient() },
        )
      : isKeyvPostgres(store.store)
        ? PostgresPartitionStore.fromKeyv(store.store, storeTimeoutMs, settings.namespace)
        : new KeyvPartitionStore(store, settings.lockStore, { storeTimeoutMs, lockWaitTimeoutMs });
    const repositoryParts = [
      this.#partitionStore,
      events,
      { ...settings, contentionTimeoutMs: lockWaitTimeoutMs },
      l1,
      invalidations && (() => invalidations.settled()),
    ] as const;
    this.#repository = telemetry
      ? new TracedPartitionRepository(telemetry, ...repositoryParts)
      : new PartitionRepository(...repositoryParts);
    this.#stopObservingL1 = l1 && telemetry?.observeL1(l1);
    this.#keyedHash = settings.keyedHash;
    this.#keyPrefix = settings.keyPrefix;
    const partitionStore = this.#partitionStore;
    exposeInternals(this, {
      lockStore: settings.lockStore,
      repository: this.#repository,
      l1,
      telemetry,
      events,
      values: {
        keyPrefix: settings.keyPrefix,
        cipher: settings.cipher,
        getValue: (key) => partitionStore.getValue(key),
        setValue: (key, value, ttlMs) => partitionStore.setValue(key, value, ttlMs),
      },
      operationPlugin: (partition, clientId) => this.#plugin(partition, clientId, true),
      assertOpen: () => this.#assertOpen(),
    });
    invalidations?.start(); // in the background: L1 stays bypassed until tracking is on
  }

  /** `true` when partitions are written with an atomic compare-and-set (Redis, PostgreSQL), not under a lock. */
  get atomicWrites(): boolean {
    return this.#partitionStore instanceof RedisPartitionStore || this.#partitionStore instanceof PostgresPartitionStore;
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
    this.#assertOpen();
    requireObject(options, 'options');
    const clientId = options.clientId === undefined ? undefined : requireNonEmptyString(options.clientId, 'options.clientId', 512);
    return this.#plugin(partitionKey === undefined ? undefined : PartitionKey.from(partitionKey), clientId, false);
  }

  /** A plugin whose account partitions are named for `clientId`; `reuseSnapshot` for one operation's client. */
  #plugin(partition: PartitionKey | undefined, clientId: string | undefined, reuseSnapshot: boolean): PartitionCachePlugin {
    this.#assertOpen();
    const scope = (key: PartitionKey): PartitionKey => this.#named(key, clientId);
    return new PartitionCachePlugin(this.#repository, partition === undefined ? undefined : scope(partition), reuseSnapshot, scope);
  }

  /**
   * A partition as this cache stores it: an account's kept apart for `clientId` when given, and
   * named by the keyed hash when `partitionHashKey` is set (so that every key, record, event and
   * error below carries that hash, never the unkeyed one).
   */
  #named(partition: PartitionKey, clientId: string | undefined): PartitionKey {
    const key = clientId === undefined ? partition : partition.forClient(clientId);
    return this.#keyedHash ? withKeyedHash(key, this.#keyedHash(key.value)) : key;
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
    return this.#named(PartitionKey.from(partitionKey), undefined).hash;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('this DistributedTokenCache is closed; create a new one');
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
    this.#assertOpen();
    await Promise.all([this.#partitionStore.getValue(connectCheckKey(this.#keyPrefix)), this.lockStore.connect?.()]);
  }

  /**
   * Disconnects the store and closes the lock store. Idempotent; never hangs on a store that is
   * down (failures are reported as `store:error` events with `operation: 'close'`).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopObservingL1?.();
    const results = await Promise.allSettled([this.#invalidations?.close(), this.#partitionStore.close(), this.lockStore.close()]);
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      const error =
        result.reason instanceof MsalDistributedCacheError
          ? result.reason
          : new StoreUnavailableError(`closing the store failed: ${String(result.reason)}`, { cause: result.reason });
      this.#events('store:error', { operation: 'close', code: error.code, outcome: 'ignored', error });
    }
  }
}
