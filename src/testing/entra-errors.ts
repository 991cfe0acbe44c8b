/**
 * Entra ID's token-endpoint error responses, in the exact JSON shape the real service sends
 * (`error`, an `error_description` that starts with the AADSTS code and ends with Trace ID,
 * Correlation ID and Timestamp, `error_codes`, `timestamp`, `trace_id`, `correlation_id`,
 * `error_uri`). MSAL turns these into `ServerError` with `errorNo = error_codes[0]`.
 */
import { randomUUID } from 'node:crypto';

/**
 * The AADSTS errors the fake Entra ID can answer with. Each has the `codes` of its `error_codes`
 * (the first is the AADSTS number), the OAuth `error`, the HTTP `status`, and the `text` of its
 * `error_description`.
 */
export const AADSTS = {
  /** The authorization code was already redeemed. */
  codeAlreadyRedeemed: {
    codes: [54005],
    error: 'invalid_grant',
    status: 400,
    text: 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  },
  /** The authorization code has expired (its lifetime is about 10 minutes). */
  codeExpired: {
    codes: [70008],
    error: 'invalid_grant',
    status: 400,
    text: 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  },
  /** PKCE: the code_verifier does not match the code_challenge. */
  pkceMismatch: {
    codes: [501481],
    error: 'invalid_grant',
    status: 400,
    text: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  },
  /** Unknown or malformed code or refresh token. */
  invalidGrant: { codes: [70000], error: 'invalid_grant', status: 400, text: "The provided value for the 'code' parameter is not valid." },
  /** A refresh token that was revoked or is unknown. */
  invalidRefreshToken: {
    codes: [70000],
    error: 'invalid_grant',
    status: 400,
    text: 'The provided value for the refresh token is not valid. The token was revoked or is unknown.',
  },
  /** A refresh token already exchanged, presented again under strict rotation (reuse detection as in Auth0, Okta or Keycloak; Entra ID itself accepts it): its family is revoked. */
  refreshTokenReused: {
    codes: [70043],
    error: 'invalid_grant',
    status: 400,
    text: 'The refresh token has already been used (refresh token rotation); the token family is revoked. Sign the user in again.',
  },
  /** redirect_uri differs from the one used at /authorize. */
  redirectUriMismatch: {
    codes: [50011],
    error: 'invalid_grant',
    status: 400,
    text: 'The redirect URI specified in the request does not match the redirect URI used to obtain the authorization code.',
  },
  /** Unknown application. */
  unknownClient: { codes: [700016], error: 'unauthorized_client', status: 400, text: 'Application was not found in the directory.' },
  /** Wrong client secret. */
  invalidClientSecret: {
    codes: [7000215],
    error: 'invalid_client',
    status: 401,
    text: 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
  },
  /** A malformed request (missing parameter, unsupported grant). */
  invalidRequest: {
    codes: [900144],
    error: 'invalid_request',
    status: 400,
    text: 'The request body must contain the following parameter.',
  },
  /** An on-behalf-of assertion that is not a valid token of this service. */
  invalidAssertion: { codes: [50013], error: 'invalid_grant', status: 400, text: 'Assertion failed signature validation.' },
} as const;

/** The name of one AADSTS error in {@link AADSTS}. */
export type AadstsErrorName = keyof typeof AADSTS;

/** The body of an Entra ID token-endpoint error. */
export interface EntraErrorBody {
  /** The OAuth error, such as `invalid_grant`. */
  error: string;
  /** `AADSTS<code>: <text> Trace ID: ... Correlation ID: ... Timestamp: ...`. */
  error_description: string;
  /** The AADSTS numbers; MSAL's `ServerError.errorNo` is the first. */
  error_codes: number[];
  /** `2026-11-22 19:17:13Z`. */
  timestamp: string;
  /** A random GUID. */
  trace_id: string;
  /** The request's `client-request-id`, or a random GUID. */
  correlation_id: string;
  /** `https://login.microsoftonline.com/error?code=<code>`. */
  error_uri: string;
}

/** Entra's timestamp format: `2026-11-22 19:17:13Z`. */
function entraTimestamp(at: number): string {
  return new Date(at)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Builds an error response as Entra ID sends it.
 *
 * @param name - which error
 * @param options.correlationId - echoed from the request's `client-request-id` header
 * @param options.errorCodes - overrides `error_codes` (for the legacy `[70002, 54005]` shape)
 * @param options.detail - appended to the description (for example the missing parameter)
 * @param options.now - epoch ms of the timestamp
 * @returns the HTTP status and the JSON body
 *
 * @example
 * ```ts
 * const { status, body } = entraErrorResponse('codeAlreadyRedeemed', { errorCodes: [70002, 54005] });
 * // status 400, body.error 'invalid_grant', body.error_description 'AADSTS54005: OAuth2 Authorization code was already redeemed, ...'
 * ```
 */
export function entraErrorResponse(
  name: AadstsErrorName,
  options: { correlationId?: string; errorCodes?: number[]; detail?: string; now?: number } = {},
): {
  /** The HTTP status: 400, or 401 for a wrong client secret. */
  status: number;
  /** The JSON body. */
  body: EntraErrorBody;
} {
  const spec = AADSTS[name];
  const errorCodes = options.errorCodes ?? [...spec.codes];
  const traceId = randomUUID();
  const correlationId = options.correlationId ?? randomUUID();
  const timestamp = entraTimestamp(options.now ?? Date.now());
  const primary = spec.codes[0];
  const detail = options.detail ? ` ${options.detail}` : '';
  return {
    status: spec.status,
    body: {
      error: spec.error,
      error_description: `AADSTS${primary}: ${spec.text}${detail} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: errorCodes,
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${primary}`,
    },
  };
}
