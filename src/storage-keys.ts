/**
 * Every name the library stores under, built here and nowhere else: what is in a store can be
 * read off this file. Each key carries a Redis Cluster hash tag (`{...}`) so that one partition's,
 * or one claim's, keys share a slot. Names take only hashes, never a code, token or account id.
 *
 * | Key | Store | What |
 * | --- | --- | --- |
 * | `<prefix>cache:{<partition hash>}` | token store | one partition of MSAL's cache |
 * | `<prefix>cache:{<partition hash>}:l1-echo:<tracker id>` | token store | never kept: set and deleted by a compare-and-set through an L1's tracking connection, so that its invalidation names the writer |
 * | `<prefix>redeemed:{<code hash>}` | token store | the copy of a "redeemed" outcome, read after an AADSTS54005 |
 * | `<prefix>connect-check` | token store | never written; read by `connect()` |
 * | `lock:<partition key>` | lock store (its own prefix) | a partition's write lock, on stores without compare-and-set |
 * | `<prefix>lock:{<key>}`, `…:fence` | Redis lock store | a lease and its fencing counter |
 * | `<prefix>claim:{<key>}:lock`, `:attempt`, `:outcome`, `:fence` | Redis lock store | a claim on single-use work |
 * | `<prefix>lock-changes` | Redis lock store | the pub/sub channel that wakes waiters |
 * | table `msal_dc_locks` (`tableName`), rows `lock:<key>`, `claim:<key>` | PostgreSQL lock store | a lease, or a claim (lease, attempt marker, outcome), with its fencing counter |
 * | channel `<table>_changes` | PostgreSQL lock store | the `LISTEN`/`NOTIFY` channel that wakes waiters (payload: a hash of the key) |
 * | claim `flight:<flight hash>:<partition version>:<round>` | lock store | one round of a token flight (one token request for the fleet); its outcome MACed as `flight-outcome:{<claim key>}` |
 *
 * On Redis, a Keyv namespace puts `<namespace>::` before every token-store key.
 */

/** The prefix of every key, unless `keyPrefix` says otherwise. */
export const DEFAULT_KEY_PREFIX = 'msal-dc:';

/** Where a partition is stored. */
export function partitionStorageKey(prefix: string, partitionHash: string): string {
  return `${partitionKeysPrefix(prefix)}{${partitionHash}}`;
}

/** What every partition's storage key starts with (what the in-process L1 tracks in Redis). */
export function partitionKeysPrefix(prefix: string): string {
  return `${prefix}cache:`;
}

/**
 * The key a compare-and-set through an L1's tracking connection sets and deletes next to the
 * partition's (`redisKey`, namespace included), so that the tracker recognizes its own write in
 * the invalidations (see src/cache/l1/redis-invalidations.ts). Same hash tag: same Cluster slot.
 */
export function l1EchoMarkerKey(redisKey: string, trackerId: string): string {
  return `${redisKey}${L1_ECHO_MARKER}${trackerId}`;
}

/** What every {@link l1EchoMarkerKey} holds between the partition's key and the tracker id. */
export const L1_ECHO_MARKER = ':l1-echo:';

/**
 * What the Redis partition store puts before a storage key for a Keyv namespace (`<namespace>::`,
 * where `@keyv/redis` puts its own keys), or nothing without one.
 */
export function redisNamespacePrefix(namespace: string | undefined): string {
  return namespace === undefined ? '' : `${namespace}::`;
}

/** The partition hash in a key built by {@link partitionStorageKey} with `prefix`, or `undefined` for another key. */
export function partitionHashOfStorageKey(prefix: string, storageKey: string): string | undefined {
  const head = `${partitionKeysPrefix(prefix)}{`;
  if (!storageKey.startsWith(head) || !storageKey.endsWith('}')) return undefined;
  const hash = storageKey.slice(head.length, -1);
  return /^[0-9a-f]+$/.test(hash) ? hash : undefined;
}

/** A partition's write lock, as a lock-store key (stores without an atomic compare-and-set). */
export function partitionLockKey(storageKey: string): string {
  return `lock:${storageKey}`;
}

/** The key `connect()` reads to check that the token store answers; never written. */
export function connectCheckKey(prefix: string): string {
  return `${prefix}connect-check`;
}

/**
 * The name of a code's outcome record in the lock store: what its MAC and its encryption are
 * bound to (the lock store adds its own prefix and suffixes).
 */
export function claimRecordName(codeHash: string): string {
  return `claim:{${codeHash}}`;
}

/** The name of the copy of a "redeemed" outcome in the token store (its MAC is bound to it). */
export function redeemedRecordName(codeHash: string): string {
  return `redeemed:{${codeHash}}`;
}

/** Where a record named by {@link claimRecordName} or {@link redeemedRecordName} is stored in the token store. */
export function recordStorageKey(prefix: string, name: string): string {
  return `${prefix}${name}`;
}

/** The keys of a lease in the Redis lock store. */
export function redisLeaseKeys(prefix: string, key: string): { lock: string; fence: string } {
  const lock = `${prefix}lock:{${key}}`;
  return { lock, fence: `${lock}:fence` };
}

/** The keys of a claim in the Redis lock store. */
export function redisClaimKeys(prefix: string, key: string): { lock: string; attempt: string; outcome: string; fence: string } {
  const base = `${prefix}claim:{${key}}`;
  return { lock: `${base}:lock`, attempt: `${base}:attempt`, outcome: `${base}:outcome`, fence: `${base}:fence` };
}

/** The channel on which the Redis lock store announces that a key changed. */
export function lockChangesChannel(prefix: string): string {
  return `${prefix}lock-changes`;
}

/**
 * The lock-store key of one round of a token flight (src/flight): the flight (a hash of the
 * partition and, for app and on-behalf-of tokens, the request's shape), the version of the
 * partition the round starts from (`-` when absent), and the round within that version.
 */
export function flightClaimKey(flightHash: string, baseVersion: string, round: number): string {
  return `flight:${flightHash}:${baseVersion || '-'}:${round}`;
}

/** The flight hash of a round's claim key (as {@link flightClaimKey} made it), or `undefined` for another key. */
export function flightHashOfClaimKey(claimKey: string): string | undefined {
  return /^flight:([0-9a-f]+):/.exec(claimKey)?.[1];
}

/** The name a flight round's outcome is MACed under (its claim key, in a namespace of its own). */
export function flightOutcomeName(claimKey: string): string {
  return `flight-outcome:{${claimKey}}`;
}

/** The default table of the PostgreSQL lock store. */
export const DEFAULT_POSTGRES_LOCK_TABLE = 'msal_dc_locks';

/** The rows of a lease and of a claim on `key` in the PostgreSQL lock store's table. */
export function postgresLockRowKeys(key: string): { lease: string; claim: string } {
  return { lease: `lock:${key}`, claim: `claim:${key}` };
}

/** The `LISTEN`/`NOTIFY` channel on which the PostgreSQL lock store announces that a row changed (at most 63 bytes). */
export function postgresLockChannel(tableName: string): string {
  return `${tableName.slice(0, 55)}_changes`;
}
