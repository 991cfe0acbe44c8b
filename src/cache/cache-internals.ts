/**
 * The seam between a DistributedTokenCache and the rest of the library: what the client and
 * redeem-once need of a cache (its partitions, its lock store, raw values for redemption records,
 * its events), reached through {@link internalsOf} and kept off the cache's public surface. As in
 * openid-client (`int(config)` over a WeakMap): users see only the public API, and nothing here
 * appears in the published types.
 */
import type { RecordCipher } from '../crypto/record-cipher';
import { InvalidArgumentError } from '../errors';
import type { EventSink, TokenCacheEvents } from '../events';
import type { LockStore } from '../lock/lock-store';
import type { Telemetry } from '../telemetry/telemetry';
import type { PartitionCachePlugin } from './cache-plugin';
import type { PartitionKey } from './partition-key';
import type { L1Cache } from './l1/l1-cache';
import type { PartitionRepository, Snapshot } from './partition-repository';

export interface CacheInternals {
  readonly lockStore: LockStore;
  readonly repository: PartitionRepository;
  /** The in-process L1 in front of the store, if any (its figures, for tests and the benchmark). */
  readonly l1: L1Cache<Snapshot> | undefined;
  /** What records the cache's metrics and spans (a DistributedClientApplication without its own uses it). */
  readonly telemetry: Telemetry | undefined;
  /** The cache's events (`store:error` for the lock store is reported there too). */
  readonly events: EventSink<TokenCacheEvents>;
  /** Raw string values beside the partitions, with the cache's prefix and encryption (redemption records). */
  readonly values: {
    keyPrefix: string;
    cipher: RecordCipher | undefined;
    getValue(key: string): Promise<string | undefined>;
    setValue(key: string, value: string, ttlMs: number): Promise<void>;
  };
  /** A plugin for one operation of DistributedClientApplication (reads once), for its client id. */
  operationPlugin(partition: PartitionKey | undefined, clientId: string): PartitionCachePlugin;
  /** @throws ClosedError once the cache is closed */
  assertOpen(): void;
}

const internals = new WeakMap<object, CacheInternals>();

/** Called once by the cache's constructor. */
export function exposeInternals(cache: object, parts: CacheInternals): void {
  internals.set(cache, parts);
}

/**
 * The internals of a cache.
 *
 * @throws InvalidArgumentError when `cache` is not a DistributedTokenCache (of this copy of the library)
 */
export function internalsOf(cache: object, name = 'options.cache'): CacheInternals {
  const found = internals.get(cache);
  if (!found) throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be a DistributedTokenCache`);
  return found;
}
