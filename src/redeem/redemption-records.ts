/**
 * Redemption records: a code's outcome as stored for its duplicates, in the lock store (the
 * record every duplicate reads) and, for "redeemed" outcomes, as a copy in the token store (read
 * after an AADSTS54005, when the lock store's record is gone). Each record carries a MAC under the
 * app's code-hash key, bound to the record's name, and is then sealed when encryption is on (MAC,
 * then encrypt): whoever can write to a store cannot make a record name another account.
 */
import type { RecordCipher } from '../crypto/record-cipher';
import { claimRecordName, recordStorageKey, redeemedRecordName } from '../storage-keys';
import type { CodeHasher } from './code-hasher';
import { signOutcome, verifyOutcome } from './outcome';
import type { RedemptionOutcome } from './outcome';

/** What the records need of the token store: raw string values beside the partitions. */
export interface TokenStoreValues {
  /** The prefix of the token store's keys (`keyPrefix`). */
  keyPrefix: string;
  /** Encryption at rest, when it is on. */
  cipher: RecordCipher | undefined;
  getValue(key: string): Promise<string | undefined>;
  setValue(key: string, value: string, ttlMs: number): Promise<void>;
}

/** What a read found: an outcome, nothing, or a record that failed its integrity check. */
export type StoredOutcome = RedemptionOutcome | 'corrupt' | undefined;

export class RedemptionRecords {
  /**
   * @param hasher - the app's code-hash key (MACs)
   * @param tokenStore - where the copies of "redeemed" outcomes go
   * @param recordTtlMs - how long those copies are kept
   */
  constructor(
    private readonly hasher: CodeHasher,
    private readonly tokenStore: TokenStoreValues,
    private readonly recordTtlMs: number,
  ) {}

  /** The stored form of an outcome in the lock store. */
  seal(codeHash: string, outcome: RedemptionOutcome): string {
    const name = claimRecordName(codeHash);
    return this.encrypt(signOutcome(outcome, this.hasher, name), name);
  }

  /** The outcome in a lock-store record, or `'corrupt'` when it fails its check (it then names no account). */
  open(codeHash: string, stored: string): Exclude<StoredOutcome, undefined> {
    const name = claimRecordName(codeHash);
    return verifyOutcome(this.decrypt(stored, name), this.hasher, name) ?? 'corrupt';
  }

  /** The copy in the token store: `undefined` when absent (or, with encryption on, when it does not decrypt). */
  async readCopy(codeHash: string): Promise<StoredOutcome> {
    const name = redeemedRecordName(codeHash);
    const key = recordStorageKey(this.tokenStore.keyPrefix, name);
    const stored = await this.tokenStore.getValue(key);
    const text = stored === undefined ? undefined : this.decrypt(stored, key);
    if (text === undefined) return undefined;
    return verifyOutcome(text, this.hasher, name) ?? 'corrupt';
  }

  /** Writes the copy of a "redeemed" outcome to the token store. */
  async writeCopy(codeHash: string, outcome: RedemptionOutcome): Promise<void> {
    const name = redeemedRecordName(codeHash);
    const key = recordStorageKey(this.tokenStore.keyPrefix, name);
    await this.tokenStore.setValue(key, this.encrypt(signOutcome(outcome, this.hasher, name), key), this.recordTtlMs);
  }

  private encrypt(text: string, context: string): string {
    return this.tokenStore.cipher ? this.tokenStore.cipher.seal(text, context) : text;
  }

  /** `undefined` when the value does not open (tampered, foreign, or plain text while encrypting). */
  private decrypt(value: string, context: string): string | undefined {
    return this.tokenStore.cipher ? this.tokenStore.cipher.open(value, context) : value;
  }
}
