/**
 * Events, with namespaced names. Payloads name partitions and codes only by hash and never carry
 * a token, a code, a secret or a verifier. A listener that throws cannot break an operation.
 */
import { EventEmitter } from 'node:events';
import type { ErrorCode } from './errors';

/** Common to cache events: which partition, as a hash of its key. */
export interface PartitionEvent {
  /** The first 32 hex characters of SHA-256 of the partition key. */
  partitionHash: string;
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
  /** A partition was read and had usable data. */
  'cache:hit': [PartitionEvent];
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
  /** A store or lock-store call failed or timed out, whatever the failure policy did about it. */
  'store:error': [StoreErrorEvent];
}

/**
 * A typed `EventEmitter` (`on`, `once`, `off` with the event names and payloads of `Events`) whose
 * events never throw because of a listener: a listener that throws becomes a process warning.
 */
export class SafeEmitter<Events extends Record<keyof Events, unknown[]>> extends EventEmitter<Events> {
  /** @internal Emits and swallows listener exceptions (reported to `process.emitWarning`). */
  safeEmit<Name extends keyof Events & string>(name: Name, ...payload: Events[Name]): void {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(name, ...payload);
    } catch (error) {
      process.emitWarning(
        `a "${name}" listener threw: ${error instanceof Error ? error.message : String(error)}`,
        'MsalDistributedCacheWarning',
      );
    }
  }
}
