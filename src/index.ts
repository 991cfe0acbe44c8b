// Public entry point `msal-distributed-cache` (barrel only).
export * from './errors';
export type * from './events';
export { DistributedTokenCache } from './cache/distributed-token-cache';
export type { DistributedTokenCacheOptions } from './cache/distributed-token-cache';
export { KeyRing } from './crypto/key-ring';
export type { KeyRingKey, KeyRingOptions } from './crypto/key-ring';
export { envelopeKeyId } from './crypto/envelope';
export type { EncryptionOptions } from './crypto/record-cipher';
export { PartitionKey } from './cache/partition-key';
export type { PartitionKind } from './cache/partition-key';
export { MemoryLockStore } from './lock/memory-lock-store';
export { withLock } from './lock/lock-store';
export type { Lease, LockOptions, LockStore } from './lock/lock-store';
export { DistributedClientApplication } from './client/distributed-client-application';
export type {
  DistributedAuthorizationCodeRequest,
  DistributedClientApplicationOptions,
  DistributedSilentFlowRequest,
  RedeemOptions,
} from './client/distributed-client-application';
export type { RedeemEvent, RedeemEvents } from './redeem/redeem-once';
export { RedisLockStore } from './lock/redis-lock-store';
export type { RedisLockClient, RedisLockStoreOptions } from './lock/redis-lock-store';
export type { Claim, ClaimOptions } from './lock/lock-store';
