/**
 * Every error this library throws. Each has a stable string `code` (public API: renaming one is a
 * major version), says in its message what the app should do next, and keeps the underlying
 * error (an MSAL `ServerError`, a Redis error) as `cause`. Messages never carry a token, a code,
 * a secret or a verifier.
 */

/** All error codes, for `switch (error.code)`. */
export type ErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_CODE_ALREADY_REDEEMED'
  | 'ERR_CODE_EXPIRED'
  | 'ERR_REDEMPTION_OUTCOME_UNKNOWN'
  | 'ERR_REDEMPTION_FAILED'
  | 'ERR_REDEMPTION_RECORD_CORRUPT'
  | 'ERR_TOKEN_ENDPOINT_UNAVAILABLE'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_PARTITION_MISMATCH'
  | 'ERR_CLOSED';

/**
 * Base class of every error this library throws but {@link InvalidArgumentError}: `name` is the
 * subclass name, `code` is stable, `cause` is the original error.
 *
 * @example
 * ```ts
 * try {
 *   await msal.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'], codeVerifier });
 * } catch (error) {
 *   if (!(error instanceof MsalDistributedCacheError)) throw error; // MSAL's own errors pass through
 *   switch (error.code) {
 *     case 'ERR_CODE_ALREADY_REDEEMED':
 *     case 'ERR_CODE_EXPIRED':
 *     case 'ERR_REDEMPTION_OUTCOME_UNKNOWN':
 *     case 'ERR_REDEMPTION_FAILED':
 *     case 'ERR_REDEMPTION_RECORD_CORRUPT':
 *       break; // restart the sign-in from /authorize
 *     case 'ERR_LOCK_TIMEOUT':
 *     case 'ERR_STORE_UNAVAILABLE':
 *     case 'ERR_TOKEN_ENDPOINT_UNAVAILABLE':
 *       break; // answer 503 and let the user retry
 *     default:
 *       throw error;
 *   }
 * }
 * ```
 */
export abstract class MsalDistributedCacheError extends Error {
  /** The `code` of this class's errors, for comparisons such as `error.code === CodeExpiredError.code`. */
  static readonly code: ErrorCode;
  /** The stable code of this error (public API: renaming one is a major version). */
  abstract readonly code: ErrorCode;

  /**
   * @param message - what went wrong and what to do next; never a token, code, secret or verifier
   * @param options.cause - the underlying error (an MSAL `ServerError`, a Redis error)
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

/**
 * A duplicate redemption of an authorization code that we cannot answer with tokens: its binding
 * (PKCE verifier or `binding`) does not match the first redemption's, or the code was redeemed
 * outside this library's control. Restart the sign-in from /authorize.
 */
export class CodeAlreadyRedeemedError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_CODE_ALREADY_REDEEMED';
  readonly code = 'ERR_CODE_ALREADY_REDEEMED';
  /**
   * Why no tokens were returned, as in the `redeem:refused` event: `'no-binding'` (the request
   * carries no PKCE verifier or binding), `'binding-mismatch'` (it carries another sign-in's),
   * `'already-redeemed'` (Entra ID said AADSTS54005 and no tokens of that redemption can be used),
   * `'tokens-gone'` (the tokens were removed, or refused by Entra ID).
   */
  readonly reason: AlreadyRedeemedReason;

  /**
   * @param message - what went wrong and what to do next
   * @param reason - why no tokens were returned
   * @param options.cause - the underlying error
   */
  constructor(message: string, reason: AlreadyRedeemedReason, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** {@link CodeAlreadyRedeemedError.reason}: the `redeem:refused` reasons that error stands for. */
export type AlreadyRedeemedReason = 'no-binding' | 'binding-mismatch' | 'already-redeemed' | 'tokens-gone';

/** The authorization code expired (AADSTS70008). Restart the sign-in from /authorize. */
export class CodeExpiredError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_CODE_EXPIRED';
  readonly code = 'ERR_CODE_EXPIRED';
}

/**
 * The token request for a code failed in a way that leaves open whether the server redeemed it
 * (a dropped connection, a timeout). The code is not sent again; restart from /authorize.
 */
export class RedemptionOutcomeUnknownError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_REDEMPTION_OUTCOME_UNKNOWN';
  readonly code = 'ERR_REDEMPTION_OUTCOME_UNKNOWN';
}

/**
 * A duplicate of a code whose first redemption failed (for example a PKCE mismatch): the code is
 * not sent again. Restart the sign-in from /authorize.
 */
export class RedemptionFailedError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_REDEMPTION_FAILED';
  readonly code = 'ERR_REDEMPTION_FAILED';
}

/**
 * The stored outcome of a code's redemption failed its integrity check: edited or copied by
 * someone who can write to the lock store or token store, or written by an instance with another
 * `codeHashKey`. No tokens are returned for it. Restart the sign-in from /authorize, and check who
 * can write to the stores (see docs/security.md).
 */
export class RedemptionRecordCorruptError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_REDEMPTION_RECORD_CORRUPT';
  readonly code = 'ERR_REDEMPTION_RECORD_CORRUPT';
}

/**
 * Entra ID did not answer a request this library needed (a 5xx, a dropped connection, a timeout),
 * and nothing was removed or spent because of it: retry the same request later. Thrown for the
 * refresh that answers a code Entra ID says was already redeemed (AADSTS54005).
 */
export class TokenEndpointUnavailableError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_TOKEN_ENDPOINT_UNAVAILABLE';
  readonly code = 'ERR_TOKEN_ENDPOINT_UNAVAILABLE';
}

/**
 * Waiting took longer than its bound: a cache write waiting for other writers of its partition
 * (`lockWaitTimeoutMs` of the cache), a duplicate callback waiting for the redemption in progress
 * (`redeem.waitTimeoutMs`), or `withLock` / `LockStore.acquire` (`waitTimeoutMs`). Retry later, or
 * raise that option.
 */
export class LockTimeoutError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_LOCK_TIMEOUT';
  readonly code = 'ERR_LOCK_TIMEOUT';
}

/** The store (Keyv or the lock store) failed or did not answer in time. Check its connection. */
export class StoreUnavailableError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_STORE_UNAVAILABLE';
  readonly code = 'ERR_STORE_UNAVAILABLE';
}

/**
 * A write would put one account's tokens into a partition that holds another's. This points at a
 * bug in how partition keys are chosen; nothing was written.
 */
export class PartitionMismatchError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_PARTITION_MISMATCH';
  readonly code = 'ERR_PARTITION_MISMATCH';
}

/** The object was closed; create a new one. */
export class ClosedError extends MsalDistributedCacheError {
  static override readonly code = 'ERR_CLOSED';
  readonly code = 'ERR_CLOSED';
}

/** A bad argument: a `TypeError` with `code` `ERR_INVALID_ARG_TYPE` or `ERR_INVALID_ARG_VALUE`. */
export class InvalidArgumentError extends TypeError {
  /** `ERR_INVALID_ARG_TYPE` (a value of the wrong type) or `ERR_INVALID_ARG_VALUE` (a bad value of the right type). */
  readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE';

  /**
   * @param code - which of the two
   * @param message - names the argument or option, for example `"options.storeTimeoutMs" must be a positive integer`
   */
  constructor(code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE', message: string) {
    super(message);
    this.name = 'InvalidArgumentError';
    this.code = code;
  }
}
