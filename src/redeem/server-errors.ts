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

/** A short, secret-free name for an error, for outcome records. */
export function errorCodeOf(error: unknown): string {
  if (error instanceof AuthError) return error.errorCode || error.name;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}
