/**
 * Partition keys, following Microsoft's guidance for distributed token caches: one partition per
 * account (homeAccountId) for user flows, per app and tenant for client credentials, and per hash
 * of the incoming assertion for on-behalf-of. Account partitions can be kept apart per app (client
 * id), as DistributedClientApplication always does. A key is never empty; in storage it appears
 * only as a hash.
 */
import { InvalidArgumentError } from '../errors';
import { sha256Hex, shortHash } from '../internal/hash';
import { requireNonEmptyString } from '../internal/validate';

/** What a partition holds. */
export type PartitionKind = 'account' | 'app' | 'obo';

/** Set by PartitionKey's static block: it alone can write a key's private hash. */
let renamed: (partition: PartitionKey, hash: string) => PartitionKey;

/**
 * The key of one partition of the token cache. {@link DistributedClientApplication} picks the
 * partition of every operation itself; build keys for {@link DistributedTokenCache.plugin} when
 * you bind MSAL clients of your own.
 *
 * @example
 * ```ts
 * const user = PartitionKey.forAccount(homeAccountId); // sign-in, silent, sign-out
 * const daemon = PartitionKey.forApp(clientId, tenantId); // client credentials
 * const assertion = req.headers.authorization!.slice('Bearer '.length); // an API's incoming access token
 * const api = PartitionKey.forOnBehalfOf(clientId, assertion); // on-behalf-of
 * const plugin = cache.plugin(daemon);
 * console.log(user.value, cache.partitionHash(user)); // account:<homeAccountId>, and the hash that names it in storage
 * ```
 */
export class PartitionKey {
  private constructor(
    /** What the partition holds. */
    readonly kind: PartitionKind,
    /** For `account`: the homeAccountId that every entry must belong to. */
    readonly homeAccountId: string | undefined,
    /** The full key, for example `account:<homeAccountId>`. */
    readonly value: string,
    /** For `account`: the client id whose partition this is, when kept apart per app ({@link forClient}). */
    readonly clientId?: string,
  ) {}

  /**
   * The partition of one signed-in account.
   *
   * @param homeAccountId - MSAL's `AccountInfo.homeAccountId` (`<oid>.<tenantId>`)
   * @param name - the argument's name in error messages
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for an empty or non-string id
   */
  static forAccount(homeAccountId: string, name = 'homeAccountId'): PartitionKey {
    requireNonEmptyString(homeAccountId, name, 512);
    return new PartitionKey('account', homeAccountId, `account:${homeAccountId}`);
  }

  /**
   * This account's partition for one app only: apps with different client ids sharing a store
   * then never share an account's partition (a sign-out in one does not remove the other's
   * tokens). {@link DistributedClientApplication} always uses it; with
   * {@link DistributedTokenCache.plugin}, pass `{ clientId }` instead. App and on-behalf-of keys
   * already carry their client id and are returned unchanged.
   *
   * @param clientId - the client id of the app whose tokens the partition holds
   * @returns the key of that app's partition for this account
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for an empty client id, or one other than
   *   the client id this key is already kept apart for
   *
   * @example
   * ```ts
   * const key = PartitionKey.forAccount(homeAccountId).forClient(clientId);
   * console.log(key.value); // account@<clientId>:<homeAccountId>
   * ```
   */
  forClient(clientId: string): PartitionKey {
    requireNonEmptyString(clientId, 'clientId', 512);
    if (this.kind !== 'account') return this;
    if (this.clientId !== undefined) {
      if (part(this.clientId) === part(clientId)) return this;
      throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `this partition key is already kept apart for another client id`);
    }
    // '@' cannot follow 'account' in an unscoped key ('account:...'), and part() encodes ':'.
    return new PartitionKey('account', this.homeAccountId, `account@${part(clientId)}:${this.homeAccountId}`, clientId);
  }

  static {
    renamed = (partition, hash) => {
      const key = new PartitionKey(partition.kind, partition.homeAccountId, partition.value, partition.clientId);
      key.#hash = hash;
      return key;
    };
  }

  /**
   * The partition of an app's own tokens (client credentials) in one tenant.
   *
   * @param clientId - the app's client id
   * @param tenantId - the tenant of the authority (a GUID, a domain, `common`, `organizations`)
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for an empty or non-string id
   */
  static forApp(clientId: string, tenantId: string): PartitionKey {
    requireNonEmptyString(clientId, 'clientId', 512);
    requireNonEmptyString(tenantId, 'tenantId', 512);
    // Parts are encoded so that no two (clientId, tenantId) pairs share a key; GUIDs ignore case.
    return new PartitionKey('app', undefined, `app:${part(clientId)}:${part(tenantId)}`);
  }

  /**
   * The partition of on-behalf-of tokens for one incoming assertion (stored as its SHA-256).
   *
   * @param clientId - the app's (the middle-tier API's) client id
   * @param assertion - the incoming access token (`oboAssertion`)
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for an empty or non-string value
   */
  static forOnBehalfOf(clientId: string, assertion: string): PartitionKey {
    requireNonEmptyString(clientId, 'clientId', 512);
    requireNonEmptyString(assertion, 'oboAssertion', 64 * 1024);
    return new PartitionKey('obo', undefined, `obo:${part(clientId)}:${sha256Hex(assertion)}`);
  }

  /**
   * Accepts a `PartitionKey`, or a string taken as a homeAccountId (msal-node's convention).
   *
   * @param key - a key, or a homeAccountId
   * @param name - the argument's name in error messages
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for anything else
   */
  static from(key: PartitionKey | string, name = 'partitionKey'): PartitionKey {
    if (key instanceof PartitionKey) return key;
    if (typeof key !== 'string')
      throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be a PartitionKey or a homeAccountId string`);
    return PartitionKey.forAccount(key, name);
  }

  /**
   * The unkeyed hash of this key (the first 32 hex characters of SHA-256 of {@link value},
   * computed once). It names the partition in storage, events and errors unless the cache has a
   * `partitionHashKey`: then the cache names it by a keyed hash instead
   * ({@link DistributedTokenCache.partitionHash}). Anyone who knows the key's value can compute this one.
   */
  get hash(): string {
    this.#hash ??= shortHash(this.value);
    return this.#hash;
  }

  #hash: string | undefined;
}

const part = (value: string): string => encodeURIComponent(value.toLowerCase());

/**
 * The same partition, named in storage and events by `hash` instead of the unkeyed SHA-256: a
 * cache with `partitionHashKey` passes its keyed hash. Not public: only the cache names partitions.
 */
export function withKeyedHash(partition: PartitionKey, hash: string): PartitionKey {
  return renamed(partition, hash);
}
