/**
 * A distributed token cache and redeem-once authorization-code handling for `@azure/msal-node`
 * confidential clients: {@link DistributedClientApplication} (MSAL's confidential client, with each
 * authorization code redeemed once across every instance), {@link DistributedTokenCache} (MSAL's
 * token cache in a Keyv store, one partition per account), the lock stores
 * ({@link RedisLockStore}, {@link MemoryLockStore}), encryption at rest ({@link KeyRing}), and
 * typed errors with stable `code`s ({@link MsalDistributedCacheError}).
 *
 * @example
 * ```ts
 * import Keyv from 'keyv';
 * import KeyvRedis from '@keyv/redis';
 * import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from 'msal-distributed-cache';
 *
 * const cache = new DistributedTokenCache({
 *   store: new Keyv({ store: new KeyvRedis('redis://localhost:6379') }),
 *   lockStore: new RedisLockStore({ url: 'redis://localhost:6379' }),
 * });
 * const msal = new DistributedClientApplication({ auth: { clientId, clientSecret, authority } }, { cache });
 * ```
 *
 * @module msal-distributed-cache
 */
// Barrel only: the public API is exactly what is exported here.
export * from './errors';
export type {
  CacheCorruptEvent,
  CacheHitEvent,
  CacheInvalidateEvent,
  CacheWriteEvent,
  ClientEvents,
  FlightEvent,
  FlightGrant,
  PartitionEvent,
  RedeemEvent,
  RedeemEvents,
  RefusalReason,
  StoreErrorEvent,
  TokenCacheEvents,
  TokenFlightEvents,
} from './events';
export { DistributedTokenCache } from './cache/distributed-token-cache';
export type { DistributedTokenCacheOptions, L1Options, PartitionTtls, PluginOptions } from './cache/distributed-token-cache';
export { KeyRing } from './crypto/key-ring';
export type { KeyRingKey, KeyRingOptions } from './crypto/key-ring';
export { envelopeKeyId } from './crypto/envelope';
export type { EncryptionOptions } from './crypto/record-cipher';
export { PartitionKey } from './cache/partition-key';
export type { PartitionKind } from './cache/partition-key';
export { PostgresPartitionStore } from './cache/postgres-partition-store';
export type { PostgresPartitionTables } from './cache/postgres-partition-store';
export { MemoryLockStore } from './lock/memory-lock-store';
export { withLock } from './lock/lock-store';
export type { Lease, LockOptions, LockStore } from './lock/lock-store';
export { DistributedClientApplication } from './client/distributed-client-application';
export type {
  DistributedAuthorizationCodeRequest,
  DistributedClientApplicationOptions,
  DistributedSilentFlowRequest,
  RedeemOptions,
  SingleFlightOptions,
} from './client/distributed-client-application';
export { RedisLockStore } from './lock/redis/redis-lock-store';
export type { RedisConnectionOptions, RedisLockClient, RedisLockStoreOptions } from './lock/redis/redis-lock-store';
export type { Claim, ClaimOptions } from './lock/lock-store';
export { PostgresLockStore } from './lock/postgres/postgres-lock-store';
export type { PostgresLockStoreOptions, PostgresPool, PostgresPoolClient, PostgresQueryResult } from './lock/postgres/postgres-lock-store';
export type { TelemetryOptions } from './telemetry/options';
