/**
 * The options and request types of DistributedClientApplication, and their validation: the redeem
 * settings with their defaults, the keyed hasher of codes, and the checks on a redemption request.
 */
import type { AuthorizationCodeRequest, NodeAuthOptions, SilentFlowRequest } from '@azure/msal-node';
import type { DistributedTokenCache } from '../cache/distributed-token-cache';
import { InvalidArgumentError } from '../errors';
import { optionalBoolean, optionalPositiveInteger, requireNonEmptyString, requireObject, requireOneOf } from '../internal/validate';
import { CodeHasher, defaultCodeHashSecret } from '../redeem/code-hasher';
import type { RedeemOnceSettings } from '../redeem/redeem-once';
import type { FlightSettings } from '../flight/token-flights';
import type { TelemetryOptions } from '../telemetry/options';

/** Options of {@link DistributedClientApplication}. */
export interface DistributedClientApplicationOptions {
  /** The shared token cache (and its lock store). @defaultValue a new in-memory `DistributedTokenCache` */
  cache?: DistributedTokenCache;
  /** Redeem-once settings. */
  redeem?: RedeemOptions;
  /** Fleet single flight: one token request for every instance that needs the same token. */
  singleFlight?: SingleFlightOptions;
  /**
   * Metrics and traces of the operations, token requests, redemptions, lock waits and flights,
   * through OpenTelemetry (see docs/observability.md). `false` records nothing at all.
   * @defaultValue the cache's `telemetry` (by default the global providers of `@opentelemetry/api` when it is installed)
   */
  telemetry?: TelemetryOptions | false;
}

/**
 * Settings of fleet single flight: when the shared cache cannot answer a silent call (a refresh),
 * a client-credentials or an on-behalf-of call, one caller in the fleet sends the request and the
 * others wait for it and read its tokens (see docs/token-cache.md, "One token request per fleet").
 */
export interface SingleFlightOptions {
  /**
   * Lease of the caller sending the request; renewed while it runs. If that instance dies, one
   * waiter sends the request in its place once the lease expires. @defaultValue 15000
   */
  leaseMs?: number;
  /** How long a caller waits for the requests of others before `ERR_LOCK_TIMEOUT`. @defaultValue 45000 */
  waitTimeoutMs?: number;
  /**
   * What to do when the lock store cannot be reached: `'fail-open'` sends the request without
   * coordination (emits `flight:uncoordinated`): Entra ID accepts a superseded refresh token, so
   * availability comes first. With an identity provider that has strict refresh-token rotation
   * (reuse detection revokes the whole token family), choose `'fail-closed'`: `ERR_STORE_UNAVAILABLE`
   * is thrown and nothing is sent. @defaultValue `'fail-open'`
   */
  lockStoreFailure?: 'fail-open' | 'fail-closed';
  /**
   * `true` for identity providers with strict refresh-token rotation (reuse detection in Auth0,
   * Okta or Keycloak, through MSAL's OIDC protocol mode): every refresh of an account then takes
   * its turn across the fleet, whatever it asks for, so that no refresh token is presented twice.
   * `false`: refreshes of different tokens of one account (other scopes, authority or claims) run
   * side by side, each still once per fleet; Entra ID accepts a superseded refresh token.
   * @defaultValue false
   */
  strictRotation?: boolean;
}

/** Settings of redeem-once (`acquireTokenByCode`). */
export interface RedeemOptions {
  /**
   * Lease of the instance redeeming a code; renewed while the token request runs. If that
   * instance dies, duplicates get `ERR_REDEMPTION_OUTCOME_UNKNOWN` once it expires.
   * @defaultValue 30000
   */
  leaseMs?: number;
  /**
   * How long a duplicate waits for the redemption in progress: longer than the token request may
   * take (`tokenRequestTimeoutMs`), or duplicates give up (`ERR_LOCK_TIMEOUT`) before it ends.
   * @defaultValue the larger of `leaseMs` and `tokenRequestTimeoutMs`, plus 10000 (40000)
   */
  waitTimeoutMs?: number;
  /**
   * Deadline of the token request that redeems a code, from the moment it is sent. A request
   * still unanswered then has an unknown outcome: the caller and every duplicate get
   * `ERR_REDEMPTION_OUTCOME_UNKNOWN`, the lease is no longer renewed, and `close()` no longer
   * waits for it. @defaultValue 30000
   */
  tokenRequestTimeoutMs?: number;
  /** How long outcomes are kept for late duplicates; at least a code's lifetime. @defaultValue 900000 */
  recordTtlMs?: number;
  /**
   * Secret of the keyed hashes that name codes and bindings in the stores, and of the MACs that
   * authenticate redemption records; every instance needs the same. Set it when the app has only
   * a client assertion (no secret or certificate: the default is then derived from the public
   * client id alone, and a process warning `MSAL_DC_NO_CODE_HASH_KEY` says so), and before
   * rotating the client secret or certificate.
   * @defaultValue derived from the client id and the client secret, or the certificate's private
   *   key (never from its thumbprint, which is public)
   */
  codeHashKey?: string;
  /**
   * What to do when the lock store cannot be reached: `'fail-closed'` throws
   * `ERR_STORE_UNAVAILABLE` before anything is sent to Entra ID; `'fail-open'` redeems without
   * cross-process protection (emits `redeem:unlocked`; duplicates reaching other instances are
   * then recognised by AADSTS54005). @defaultValue `'fail-closed'`
   */
  lockStoreFailure?: 'fail-closed' | 'fail-open';
}

/** `acquireTokenByCode`'s request, plus an optional `binding` that proves a duplicate is the same sign-in. */
export type DistributedAuthorizationCodeRequest = AuthorizationCodeRequest & {
  /**
   * Proof that a duplicate callback belongs to the same sign-in: a random value made at sign-in
   * and kept in the session (not the session id, which changes when the session is regenerated
   * at sign-in). Only its keyed hash is stored. Without it, the PKCE `codeVerifier` is the proof; without
   * either, duplicates get `ERR_CODE_ALREADY_REDEEMED`.
   */
  binding?: string;
};

/** `acquireTokenSilent` by `account` (as MSAL) or by `homeAccountId` alone. */
export type DistributedSilentFlowRequest =
  | SilentFlowRequest
  | (Omit<SilentFlowRequest, 'account'> & {
      /** The account's `homeAccountId` (`result.account.homeAccountId` at sign-in, kept in the session). */
      homeAccountId: string;
      /** Not with `homeAccountId`. */
      account?: undefined;
    });

/** The redeem settings, with their defaults. */
export function redeemSettingsFrom(options: RedeemOptions | undefined): RedeemOnceSettings {
  const redeem = options === undefined ? {} : requireObject(options, 'options.redeem');
  const leaseMs = optionalPositiveInteger(redeem.leaseMs, 'options.redeem.leaseMs', 30_000);
  const tokenRequestTimeoutMs = optionalPositiveInteger(redeem.tokenRequestTimeoutMs, 'options.redeem.tokenRequestTimeoutMs', 30_000);
  return {
    leaseMs,
    tokenRequestTimeoutMs,
    // A duplicate outwaits both a dead holder's lease and a live holder's token request.
    waitTimeoutMs: optionalPositiveInteger(
      redeem.waitTimeoutMs,
      'options.redeem.waitTimeoutMs',
      Math.max(leaseMs, tokenRequestTimeoutMs) + 10_000,
    ),
    recordTtlMs: optionalPositiveInteger(redeem.recordTtlMs, 'options.redeem.recordTtlMs', 15 * 60_000),
    lockStoreFailure: requireOneOf(redeem.lockStoreFailure, 'options.redeem.lockStoreFailure', ['fail-closed', 'fail-open'], 'fail-closed'),
  };
}

/** The single-flight settings, with their defaults. */
export function flightSettingsFrom(options: SingleFlightOptions | undefined): FlightSettings {
  const flight = options === undefined ? {} : requireObject(options, 'options.singleFlight');
  return {
    leaseMs: optionalPositiveInteger(flight.leaseMs, 'options.singleFlight.leaseMs', 15_000),
    waitTimeoutMs: optionalPositiveInteger(flight.waitTimeoutMs, 'options.singleFlight.waitTimeoutMs', 45_000),
    lockStoreFailure: requireOneOf(
      flight.lockStoreFailure,
      'options.singleFlight.lockStoreFailure',
      ['fail-open', 'fail-closed'],
      'fail-open',
    ),
    strictRotation: optionalBoolean(flight.strictRotation, 'options.singleFlight.strictRotation', false),
  };
}

/** The keyed hasher of codes, bindings and record MACs: from `codeHashKey`, or derived from the app's credential. */
export function codeHasherFrom(auth: NodeAuthOptions, options: RedeemOptions | undefined): CodeHasher {
  if (options?.codeHashKey !== undefined) return new CodeHasher(requireNonEmptyString(options.codeHashKey, 'options.redeem.codeHashKey'));
  const { material, secret } = defaultCodeHashSecret(auth);
  if (!secret) warnNoCodeHashSecret();
  return new CodeHasher(material);
}

let warnedNoCodeHashSecret = false;

/**
 * Once per process: an app with only a client assertion has no secret to derive the hashing key
 * from, so code hashes and record MACs would be computable by anyone who knows the client id.
 */
function warnNoCodeHashSecret(): void {
  if (warnedNoCodeHashSecret) return;
  warnedNoCodeHashSecret = true;
  process.emitWarning(
    'DistributedClientApplication has no client secret or certificate private key to derive redeem.codeHashKey from; set options.redeem.codeHashKey to a random secret shared by every instance (see docs/security.md)',
    { code: 'MSAL_DC_NO_CODE_HASH_KEY' },
  );
}

/** Refuses malformed redemption requests before anything is stored or sent. */
export function validateCodeRequest(request: DistributedAuthorizationCodeRequest): void {
  requireObject(request, 'request');
  requireNonEmptyString(request.code, 'request.code', 16 * 1024);
  requireNonEmptyString(request.redirectUri, 'request.redirectUri', 4096);
  if (!Array.isArray(request.scopes))
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"request.scopes" must be an array of strings');
  request.scopes.forEach((scope, index) => requireNonEmptyString(scope, `request.scopes[${index}]`, 1024));
  if (request.codeVerifier !== undefined) requireNonEmptyString(request.codeVerifier, 'request.codeVerifier', 1024);
  if (request.binding !== undefined) requireNonEmptyString(request.binding, 'request.binding', 4096);
}
