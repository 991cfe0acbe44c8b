/**
 * The outcome of a code's one redemption, as recorded for every duplicate to read. Read back from
 * a store, so it is validated like any untrusted input.
 */

export type RedemptionOutcome =
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
  } catch {
    // fall through
  }
  return { state: 'unknown' };
}
