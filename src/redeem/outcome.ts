/**
 * The outcome of a code's one redemption, as recorded for every duplicate to read. Read back from
 * a store, so it is validated like any untrusted input, and authenticated: each stored record
 * carries a MAC under the app's secret, bound to its storage key, so that nobody who can write to
 * a store can put another user's account in a record.
 */
import { traceOf } from '../internal/trace-links';
import type { CodeHasher } from './code-hasher';

export type RedemptionOutcome = RedemptionState & {
  /** The W3C traceparent of the redeemer's token request, when it was traced (duplicates' spans link to it). */
  trace?: string;
};

type RedemptionState =
  /**
   * Tokens were issued and written to the account's partition. `refreshRequired`: Entra ID said
   * the code was redeemed again (AADSTS54005) and may have revoked them, so a duplicate is
   * answered only through a refresh.
   */
  | { state: 'redeemed'; homeAccountId: string; bindingHash: string; redeemedAt: number; refreshRequired?: true }
  /** Entra ID said the code was already redeemed and the cache could not answer. */
  | { state: 'already-redeemed' }
  /** Entra ID said the code expired. */
  | { state: 'expired' }
  /** The token request failed (the error code of that failure, not a secret). */
  | { state: 'failed'; errorCode: string }
  /** Nobody knows whether the code was redeemed (a dropped connection, a holder that died). */
  | { state: 'unknown' };

export function serializeOutcome(outcome: RedemptionOutcome): string {
  return JSON.stringify(outcome);
}

/** Parses a stored outcome; anything malformed counts as `unknown` (never as tokens). */
export function parseOutcome(text: string | undefined): RedemptionOutcome {
  try {
    const value = JSON.parse(text ?? '') as Record<string, unknown>;
    return { ...parseState(value), ...traceOf(value?.trace) };
  } catch {
    return { state: 'unknown' };
  }
}

/** The state of a parsed outcome; anything malformed is `unknown`. */
function parseState(value: Record<string, unknown> | null): RedemptionState {
  switch (value?.state) {
    case 'redeemed':
      if (
        typeof value.homeAccountId === 'string' &&
        value.homeAccountId &&
        typeof value.bindingHash === 'string' &&
        typeof value.redeemedAt === 'number'
      ) {
        return {
          state: 'redeemed',
          homeAccountId: value.homeAccountId,
          bindingHash: value.bindingHash,
          redeemedAt: value.redeemedAt,
          ...(value.refreshRequired === true && { refreshRequired: true }),
        };
      }
      break;
    case 'failed':
      if (typeof value.errorCode === 'string') return { state: 'failed', errorCode: value.errorCode.slice(0, 100) };
      break;
    case 'already-redeemed':
    case 'expired':
    case 'unknown':
      return { state: value.state };
  }
  return { state: 'unknown' };
}

/** Marks a MACed record (and its format version). */
const SIGNED = 'mac1.';

/**
 * The stored form of an outcome: `mac1.<MAC>.<JSON>`, the MAC bound to `storageKey`. With
 * encryption on, this text is then sealed (MAC, then encrypt).
 */
export function signOutcome(outcome: RedemptionOutcome, hasher: CodeHasher, storageKey: string): string {
  const text = serializeOutcome(outcome);
  return `${SIGNED}${hasher.macRecord(storageKey, text)}.${text}`;
}

/**
 * The outcome in a stored record, or `undefined` when the record fails the check (no MAC, a MAC
 * of other contents or of another key): such a record is corrupt and names no account.
 */
export function verifyOutcome(stored: string | undefined, hasher: CodeHasher, storageKey: string): RedemptionOutcome | undefined {
  if (stored === undefined || !stored.startsWith(SIGNED)) return undefined;
  const end = stored.indexOf('.', SIGNED.length);
  if (end < 0) return undefined;
  const text = stored.slice(end + 1);
  return hasher.verifyRecord(storageKey, text, stored.slice(SIGNED.length, end)) ? parseOutcome(text) : undefined;
}
