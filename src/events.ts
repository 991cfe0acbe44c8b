/**
 * Every event the library emits, catalogued in one place: the token cache's (`cache:*`,
 * `store:error`) and redeem-once's (`redeem:*`, `lock:lost`). Names are namespaced. Payloads name
 * partitions and codes only by hash and never carry a token, a code, a secret or a verifier. A
 * listener that throws cannot break an operation ({@link emitSafely}).
 */
import { EventEmitter } from 'node:events';
import type { ErrorCode } from './errors';

/** Common to cache events: which partition, as a hash of its key. */
export interface PartitionEvent {
  /** The first 32 hex characters of SHA-256 of the partition key. */
  partitionHash: string;
}

/** A partition was read and had usable data. */
export interface CacheHitEvent extends PartitionEvent {
  /**
   * Where it was found: `'l1'`, this process's in-process copy (kept coherent by Redis, see
   * docs/token-cache.md, "In-process L1"), or `'store'`, the token store.
   */
  level: 'l1' | 'store';
}

/**
 * The in-process L1 dropped what it held because it may be stale. Only drops of something held
 * are reported: an entry, or a read in flight that will now not be kept.
 */
export interface CacheInvalidateEvent {
  /** The partition concerned (absent when the whole L1 was emptied). */
  partitionHash?: string;
  /**
   * `'write-elsewhere'`: another instance wrote the partition (or it expired, or was evicted, in
   * Redis). `'flush'`: Redis said every tracked key may have changed (such as `FLUSHDB`).
   * `'tracking-lost'`: the tracking connection dropped or its state is unknown; L1 is bypassed
   * until tracking is back.
   */
  reason: 'write-elsewhere' | 'flush' | 'tracking-lost';
}

/** A partition was written (`attempts` > 1 after compare-and-set conflicts). */
export interface CacheWriteEvent extends PartitionEvent {
  /** Compare-and-set rounds it took: 1 without a conflict. */
  attempts: number;
  /** `true` when the write removed the partition (nothing left in it). */
  deleted: boolean;
}

/**
 * A stored entry could not be used and was treated as a miss. `'undecryptable'`: encryption is on
 * and the value is plain text, names a key not in the key ring, was written under another storage
 * key, or was altered.
 */
export interface CacheCorruptEvent extends PartitionEvent {
  /** Why the entry could not be used (see docs/failure-modes.md). */
  reason: 'unparsable' | 'wrong-shape' | 'wrong-format' | 'foreign-partition' | 'foreign-account' | 'wrong-type' | 'undecryptable';
}

/** A store or lock-store call failed or timed out, and what the library did about it. */
export interface StoreErrorEvent {
  /**
   * What failed: reading or writing a partition, a lock-store call (`'lock'`: taking a lock, or
   * claiming, settling, recording, renewing or withdrawing a code's redemption), or closing the stores.
   */
  operation: 'read' | 'write' | 'lock' | 'close';
  /** The partition concerned, as a hash of its key (absent for `close`). */
  partitionHash?: string;
  /** The code of `error` (`ERR_STORE_UNAVAILABLE`, `ERR_LOCK_TIMEOUT`, ...). */
  code: ErrorCode;
  /**
   * `'thrown'`: the caller got the error; `'treated-as-miss'` / `'ignored'`: by policy, or (for
   * `'lock'`) because it was not the caller's failure, such as recording an outcome after the tokens
   * were issued.
   */
  outcome: 'thrown' | 'treated-as-miss' | 'ignored';
  /** The error (thrown to the caller or not), with the underlying store error as `cause`. */
  error: Error;
}

/**
 * Every event the token cache emits, with its payload: listen with `cache.on(name, listener)`.
 *
 * @example
 * ```ts
 * cache.on('store:error', ({ operation, code, outcome }) => console.warn(`token store ${operation} failed: ${code} (${outcome})`));
 * cache.on('cache:corrupt', ({ partitionHash, reason }) => console.warn(`unusable partition ${partitionHash}: ${reason}`));
 * ```
 */
export interface TokenCacheEvents {
  /** A partition was read and had usable data, from the in-process L1 or from the store (`level`). */
  'cache:hit': [CacheHitEvent];
  /** A partition was read and had no usable data (absent, or unusable: see `cache:corrupt`). */
  'cache:miss': [PartitionEvent];
  /** A partition was written (or deleted, when nothing was left in it). */
  'cache:write': [CacheWriteEvent];
  /** A compare-and-set found a newer version: another writer got there first. */
  'cache:conflict': [PartitionEvent];
  /** Our changes were merged into another writer's version (3-way merge). */
  'cache:merge': [PartitionEvent];
  /** A stored entry could not be used and was treated as a miss. */
  'cache:corrupt': [CacheCorruptEvent];
  /** The in-process L1 dropped a partition (or everything) that may be stale. */
  'cache:invalidate': [CacheInvalidateEvent];
  /** A store or lock-store call failed or timed out, whatever the failure policy did about it. */
  'store:error': [StoreErrorEvent];
}

/** Why a duplicate (or a rejected redemption) got an error instead of tokens: `redeem:refused`'s `reason`. */
export type RefusalReason =
  /** The code was redeemed, and this request carries no PKCE verifier or binding to prove it is the same sign-in. */
  | 'no-binding'
  /** The code was redeemed for a sign-in with another PKCE verifier or binding. */
  | 'binding-mismatch'
  /** Entra ID said the code was already redeemed (AADSTS54005), and no tokens of that redemption can be used. */
  | 'already-redeemed'
  /** The code expired (AADSTS70008). */
  | 'expired'
  /** The token request got no answer (or its redeemer died): the code may have been redeemed. */
  | 'outcome-unknown'
  /** The first redemption failed; the code is not sent again. */
  | 'failed'
  /** The code was redeemed, but its tokens were removed or refused by Entra ID. */
  | 'tokens-gone';

/** Common to redeem events: the code, as a keyed hash. */
export interface RedeemEvent {
  /** Keyed hash (HMAC-SHA-256) of the code, truncated. */
  codeHash: string;
}

/**
 * Every event of redeem-once, emitted by {@link DistributedClientApplication}: listen with
 * `msal.on(name, listener)`.
 *
 * @example
 * ```ts
 * msal.on('redeem:answered-from-cache', ({ codeHash }) => console.info(`duplicate callback ${codeHash} answered from the cache`));
 * msal.on('redeem:refused', ({ codeHash, reason }) => console.warn(`duplicate callback ${codeHash} refused: ${reason}`));
 * ```
 */
export interface RedeemEvents {
  /** This caller redeemed the code at the token endpoint. */
  'redeem:redeemed': [
    RedeemEvent & {
      /** The account that signed in. */
      homeAccountId: string;
    },
  ];
  /** A duplicate in this process joined the pending redemption. */
  'redeem:joined': [RedeemEvent];
  /** A duplicate waited for a redemption in progress elsewhere. */
  'redeem:waited': [RedeemEvent];
  /** A duplicate was answered with tokens from the shared cache. */
  'redeem:answered-from-cache': [
    RedeemEvent & {
      /** The account whose tokens answered it. */
      homeAccountId: string;
      /** `true` when Entra ID itself said the code was redeemed (AADSTS54005) and the answer came from a refresh. */
      afterServerRejection: boolean;
    },
  ];
  /**
   * A duplicate (or a rejected redemption) got an error instead of tokens. With the reasons of a
   * {@link CodeAlreadyRedeemedError}, the error's `reason` is this event's.
   */
  'redeem:refused': [
    RedeemEvent & {
      /** Why: no or another proof of the same sign-in, or what happened to the first redemption. */
      reason: RefusalReason;
    },
  ];
  /**
   * A stored redemption record failed its integrity check (edited, copied from another code, or
   * written with another `codeHashKey`): it is ignored, and the caller gets an error instead of tokens.
   */
  'redeem:corrupt': [
    RedeemEvent & {
      /** Where the record was: the lock store's outcome, or its copy in the token store. */
      store: 'lock-store' | 'token-store';
    },
  ];
  /** The lock store could not be reached and `lockStoreFailure: 'fail-open'` redeemed without it. */
  'redeem:unlocked': [RedeemEvent];
  /** The redeemer's lease was lost while it worked (its outcome may be refused by fencing). */
  'lock:lost': [RedeemEvent];
}

/**
 * The grant of a token flight: a refresh of a user's tokens (`acquireTokenSilent`), an app token
 * (`acquireTokenByClientCredential`), or an on-behalf-of token.
 */
export type FlightGrant = 'refresh_token' | 'client_credentials' | 'on_behalf_of';

/** Common to flight events: which token, by grant and hash. */
export interface FlightEvent {
  /** The grant the flight's request uses. */
  grant: FlightGrant;
  /** The first 32 hex characters of the flight's hash (of its partition and, for app and on-behalf-of tokens, its request's shape). */
  flightHash: string;
}

/**
 * Every event of fleet single flight (one token request for the fleet, see docs/token-cache.md,
 * "One token request per fleet"), emitted by {@link DistributedClientApplication}.
 *
 * @example
 * ```ts
 * msal.on('flight:uncoordinated', ({ grant, code }) => console.warn(`${grant} request sent without coordination: ${code}`));
 * ```
 */
export interface TokenFlightEvents {
  /** This caller sent the token request for the fleet. */
  'flight:held': [FlightEvent];
  /** This caller waited for a request another caller (here or on another instance) sent, and got its outcome. */
  'flight:waited': [
    FlightEvent & {
      /** `'ok'`: answered from the tokens it wrote; `'failed'`: raised its error again. */
      outcome: 'ok' | 'failed';
      /** From the caller's first claim to its answer. */
      waitedMs: number;
    },
  ];
  /** The holder of a flight vanished (its lease expired) and this caller sent the request in its place. */
  'flight:taken-over': [FlightEvent];
  /**
   * The request went out without coordination: the lock store did not answer and
   * `singleFlight.lockStoreFailure` is `'fail-open'`, or the token store did not answer and
   * `readFailure: 'miss'` let the call go on (no one could have shared the tokens through it).
   */
  'flight:uncoordinated': [
    FlightEvent & {
      /** The error code of the store that did not answer. */
      code: ErrorCode;
    },
  ];
}

/** Every event of {@link DistributedClientApplication}: redeem-once's and fleet single flight's. */
export type ClientEvents = RedeemEvents & TokenFlightEvents;

/** Emits one kind of events (the library's own parts get this, not the emitter). */
export type EventSink<Events extends Record<keyof Events, unknown[]>> = <Name extends keyof Events & string>(
  name: Name,
  ...payload: Events[Name]
) => void;

/**
 * Emits on `emitter` and swallows what a listener throws (it becomes a process warning): a
 * listener can never break an operation.
 */
export function emitSafely<Events extends Record<keyof Events, unknown[]>, Name extends keyof Events & string>(
  emitter: EventEmitter<Events>,
  name: Name,
  ...payload: Events[Name]
): void {
  try {
    (emitter.emit as (event: string, ...args: unknown[]) => boolean).call(emitter, name, ...payload);
  } catch (error) {
    process.emitWarning(
      `a "${name}" listener threw: ${error instanceof Error ? error.message : String(error)}`,
      'MsalDistributedCacheWarning',
    );
  }
}

/** An {@link EventSink} that emits on `emitter` with {@link emitSafely}. */
export function sinkOf<Events extends Record<keyof Events, unknown[]>>(emitter: EventEmitter<Events>): EventSink<Events> {
  return (name, ...payload) => emitSafely(emitter, name, ...payload);
}
