/**
 * Reading MSAL's errors from the token endpoint. MSAL keeps only `error_codes[0]` as `errorNo`,
 * so AADSTS54005 in the legacy shape `[70002, 54005]` shows up only in the message
 * (`Error(s): 70002,54005 - ...` and `AADSTS54005` in the description).
 */
import { AuthError, ServerError } from '@azure/msal-node';

function aadstsCodes(error: ServerError): Set<number> {
  const codes = new Set<number>();
  if (error.errorNo !== undefined && error.errorNo !== '') codes.add(Number(error.errorNo));
  const listed = /Error\(s\): ([\d,\s]+)/.exec(error.errorMessage ?? '');
  for (const code of listed?.[1]?.split(',') ?? []) if (code.trim()) codes.add(Number(code));
  for (const match of (error.errorMessage ?? '').matchAll(/AADSTS(\d+)/g)) codes.add(Number(match[1]));
  return codes;
}

/** AADSTS54005: the code was already redeemed (either error shape). */
export function isCodeAlreadyRedeemed(error: unknown): boolean {
  return error instanceof ServerError && aadstsCodes(error).has(54005);
}

/** AADSTS70008: the code expired. */
export function isCodeExpired(error: unknown): boolean {
  return error instanceof ServerError && aadstsCodes(error).has(70008);
}

/** A request that failed without an answer: the server may or may not have processed it. */
export function isOutcomeUnknown(error: unknown): boolean {
  if (error instanceof ServerError) {
    // A 5xx says nothing about whether the code was consumed. MSAL takes `status` from the body,
    // which Entra rarely sets, so the OAuth error names of server failures count too.
    const status = Number((error as { status?: number }).status);
    return status >= 500 || error.errorCode === 'server_error' || error.errorCode === 'temporarily_unavailable';
  }
  return error instanceof AuthError && (error.errorCode === 'network_error' || /timeout/i.test(error.errorMessage ?? ''));
}

/** Sub-errors of `invalid_grant` that ask for the user (consent, MFA, a password change), not a refusal of the token. */
const INTERACTION_SUB_ERRORS = new Set([
  'consent_required',
  'interaction_required',
  'basic_action',
  'additional_action',
  'message_only',
  'user_password_expired',
  'ui_not_allowed',
  'interrupted_user',
]);

/**
 * The server refused a refresh grant itself: the refresh token is revoked, expired or unknown
 * (`invalid_grant`, also with sub-error `bad_token`). Not a refusal: a failure to get an answer
 * (5xx, network, timeout), a store error, or a request for user interaction (consent, MFA),
 * after which the cached tokens may still be good.
 */
export function isGrantRefused(error: unknown): boolean {
  return error instanceof AuthError && error.errorCode === 'invalid_grant' && !INTERACTION_SUB_ERRORS.has(error.subError);
}

/** A short, secret-free name for an error, for outcome records. */
export function errorCodeOf(error: unknown): string {
  if (error instanceof AuthError) return error.errorCode || error.name;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}
