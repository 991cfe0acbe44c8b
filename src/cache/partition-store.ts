/**
 * The storage contract under the token cache: versioned partition records with an atomic
 * compare-and-set. RedisPartitionStore does it in one Lua script; KeyvPartitionStore does it
 * under a lock from the lock store (lock, re-read, compare, write) for Keyv stores without atomic
 * operations. Records are untrusted input: the caller validates everything it reads.
 */

/** A stored partition as the store returns it, before validation. */
export interface PartitionRecord {
  /** Random, changes with every write; `''` means absent or unreadable. */
  version: string;
  /** Hash of the partition key the record was written for. */
  partition: string;
  /** MSAL's serialized cache (JSON text). */
  cache: string;
}

/** What a read found: a record, nothing, or something that is not a record of ours. */
export type ReadResult =
  | { kind: 'found'; record: PartitionRecord }
  | { kind: 'absent' }
  | { kind: 'corrupt'; version: string; reason: 'wrong-type' | 'wrong-shape' | 'wrong-format' };

/** The answer of a compare-and-set. */
export type CompareAndSetResult = { ok: true } | { ok: false; current: ReadResult };

export interface PartitionStore {
  /** Reads the record at `storageKey`. */
  read(storageKey: string): Promise<ReadResult>;
  /**
   * If the stored version equals `expectedVersion` (`''`: absent or unreadable), writes `next`
   * with a time-to-live of `ttlMs`, or deletes the record when `next` is `null`. Otherwise writes
   * nothing and returns what is stored now.
   */
  compareAndSet(storageKey: string, expectedVersion: string, next: PartitionRecord | null, ttlMs: number): Promise<CompareAndSetResult>;
  /** Reads a plain string value (outcome records); `undefined` when absent or not a string. */
  getValue(key: string): Promise<string | undefined>;
  /** Writes a plain string value with a time-to-live. */
  setValue(key: string, value: string, ttlMs: number): Promise<void>;
  /** Releases connections the store owns. */
  close(): Promise<void>;
}

/** The record format tag stored with Keyv records. */
export const RECORD_FORMAT = 'msal-distributed-cache/1';

/** Checks an untrusted value read from a Keyv store. */
export function toReadResult(value: unknown): ReadResult {
  if (value === undefined || value === null) return { kind: 'absent' };
  if (typeof value !== 'object' || Array.isArray(value)) return { kind: 'corrupt', version: '', reason: 'wrong-type' };
  const record = value as Record<string, unknown>;
  const version = typeof record.version === 'string' ? record.version : '';
  if (record.format !== RECORD_FORMAT) return { kind: 'corrupt', version, reason: 'wrong-format' };
  if (typeof record.partition !== 'string' || typeof record.cache !== 'string' || version === '')
    return { kind: 'corrupt', version, reason: 'wrong-shape' };
  return { kind: 'found', record: { version, partition: record.partition, cache: record.cache } };
}

/** The version a compare-and-set must name to replace what a read found. */
export function versionOf(result: ReadResult): string {
  if (result.kind === 'found') return result.record.version;
  return result.kind === 'corrupt' ? result.version : '';
}
