/**
 * The typed error for each way a redemption can end without tokens (`redeem:refused`'s reason),
 * and for the failures after which the same request can be retried as it is.
 */
import {
  CodeAlreadyRedeemedError,
  CodeExpiredError,
  LockTimeoutError,
  MsalDistributedCacheError,
  RedemptionFailedError,
  RedemptionOutcomeUnknownError,
  RedemptionRecordCorruptError,
  StoreUnavailableError,
  TokenEndpointUnavailableError,
} from '../errors';
import type { RefusalReason } from '../events';
import { isGrantRefused, isOutcomeUnknown } from './server-errors';

const RESTART = 'restart the sign-in from /authorize';

/** The error a caller gets for a refusal; `cause` is the error that led to it, if any. */
export function refusalError(reason: RefusalReason, cause?: unknown): MsalDistributedCacheError {
  const options = cause === undefined ? undefined : { cause };
  switch (reason) {
    case 'no-binding':
      return new CodeAlreadyRedeemedError(
        `this authorization code was already redeemed, and this request carries no proof that it belongs to the same sign-in (pass the PKCE codeVerifier, or a binding: a random value made at sign-in and kept in the session, not the session id, which changes when the session is regenerated at sign-in); ${RESTART}`,
        reason,
        options,
      );
    case 'binding-mismatch':
      return new CodeAlreadyRedeemedError(
        `this authorization code was already redeemed for a different sign-in (its PKCE verifier or binding does not match); ${RESTART}`,
        reason,
        options,
      );
    case 'already-redeemed':
      return new CodeAlreadyRedeemedError(
        `Entra ID says this authorization code was already redeemed (AADSTS54005) and no tokens of that redemption can be used; ${RESTART}`,
        reason,
        options,
      );
    case 'tokens-gone':
      return new CodeAlreadyRedeemedError(
        `this authorization code was already redeemed, but its tokens are no longer usable (removed, or refused by Entra ID); ${RESTART}`,
        reason,
        options,
      );
    case 'expired':
      return new CodeExpiredError(`the authorization code expired (AADSTS70008); ${RESTART}`, options);
    case 'outcome-unknown':
      return new RedemptionOutcomeUnknownError(
        `the token request for this authorization code failed without an answer, so it may have been redeemed; the code is not sent again; ${RESTART}`,
        options,
      );
    case 'failed':
      return new RedemptionFailedError(
        `the first redemption of this authorization code failed, and the code is not sent again; ${RESTART}`,
        options,
      );
  }
}

/** A redemption record that failed its integrity check: no identity is read from it. */
export function corruptRecordError(codeHash: string, store: 'lock-store' | 'token-store'): RedemptionRecordCorruptError {
  return new RedemptionRecordCorruptError(
    `the stored outcome of this authorization code's redemption (${codeHash.slice(0, 16)}, a keyed hash) failed its integrity check: it was edited, or written with another codeHashKey, so no tokens are returned for it; ${RESTART}, and check who can write to the ${store === 'lock-store' ? 'lock store' : 'token store'} (see docs/security.md)`,
  );
}

/** A refresh failure that says nothing about the tokens: no answer from Entra ID, or a store that failed. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError || error instanceof LockTimeoutError) return true;
  return !isGrantRefused(error) && isOutcomeUnknown(error);
}

/** A failure after which nothing is lost and the same request can be retried as it is. */
export function retryableError(error: unknown): MsalDistributedCacheError {
  if (error instanceof MsalDistributedCacheError) return error; // the store's own error already says to retry
  return new TokenEndpointUnavailableError(
    'Entra ID did not answer the refresh that answers this sign-in (a 5xx, a dropped connection or a timeout); its tokens are kept in the cache; retry the same request later',
    { cause: error },
  );
}

/** A lock-store failure as a typed error, for `store:error`. */
export function asLockStoreError(error: unknown, what: string): MsalDistributedCacheError {
  if (error instanceof MsalDistributedCacheError) return error;
  return new StoreUnavailableError(`${what} in the lock store failed; check the lock store's connection`, { cause: error });
}
