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
  reason: 'unparsable' | 'wrong-shape' | 'wrong-format' | 'foreign-partition' | 'foreign-account' | 'wrong-type' | 'undecryptable';
}

/** A store or lock-store call failed or timed out, and what the library did about it. */
export interface StoreErrorEvent {
  operation: 'read' | 'write' | 'lock' | 'close';
  partitionHash?: string;
  code: ErrorCode;
  /** `'thrown'`: the caller got the error; `'treated-as-miss'` / `'ignored'`: by policy. */
  outcome: 'thrown' | 'treated-as-miss' | 'ignored';
  error: Error;
}

/** Every event the token cache emits. */
export interface TokenCacheEvents {
  'cache:hit': [PartitionEvent];
  'cache:miss': [PartitionEvent];
  'cache:write': [CacheWriteEvent];
  /** A compare-and-set found a newer version: another writer got there first. */
  'cache:conflict': [PartitionEvent];
  /** Our changes were merged into another writer's version (3-way merge). */
  'cache:merge': [PartitionEvent];
  'cache:corrupt': [CacheCorruptEvent];
  'store:error': [StoreErrorEvent];
}

/** A typed EventEmitter whose `emit` never throws because of a listener. */
export class SafeEmitter<Events extends Record<keyof Events, unknown[]>> extends EventEmitter<Events> {
  /** Emits and swallows listener exceptions (reported to `process.emitWarning`). */
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
