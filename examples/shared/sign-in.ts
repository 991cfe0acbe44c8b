/**
 * The framework-independent parts of the example apps (examples/express, examples/fastify): the MSAL
 * client they accept, what a sign-in keeps in the session, the pages they render, the security
 * headers of every response, and how an error becomes a failure page that shows only a reference.
 */
import { randomBytes } from 'node:crypto';
import type { AccountInfo, AuthenticationResult, AuthorizationUrlRequest } from '@azure/msal-node';
import type { DistributedAuthorizationCodeRequest } from 'msal-distributed-cache';

/** What proves that a callback belongs to the sign-in this browser started. */
export interface SignIn {
  state: string;
  codeVerifier: string;
  binding: string;
}

/** Who is signed in, kept in the session: the key of their partition of the token cache, and the id token's names. */
export interface SignedInUser {
  homeAccountId: string;
  name: string;
  username: string;
}

/** Where the app finds and removes accounts. */
export interface AccountCache {
  getAccountByHomeId(homeAccountId: string): Promise<AccountInfo | null>;
  removeAccount(account: AccountInfo): Promise<void>;
}

/**
 * The MSAL methods the app uses: a `DistributedClientApplication`, or a plain
 * `ConfidentialClientApplication` (its accounts are in `getTokenCache()`), which redeems
 * duplicates again and so shows AADSTS54005.
 */
export type MsalClient = {
  getAuthCodeUrl(request: AuthorizationUrlRequest): Promise<string>;
  acquireTokenByCode(request: DistributedAuthorizationCodeRequest): Promise<AuthenticationResult>;
} & (AccountCache | { getTokenCache(): AccountCache });

/** The account methods of `msal`: its own (DistributedClientApplication), or its token cache's (plain MSAL). */
export function accountsOf(msal: MsalClient): AccountCache {
  return 'getTokenCache' in msal ? msal.getTokenCache() : msal;
}

/** The user to keep in the session, from a redemption's account and id-token claims; undefined without an account. */
export function userOf(result: AuthenticationResult): SignedInUser | undefined {
  if (!result.account) return undefined;
  const claims = result.idTokenClaims as { name?: string; preferred_username?: string };
  return {
    homeAccountId: result.account.homeAccountId,
    name: claims.name ?? result.account.name ?? '',
    username: claims.preferred_username ?? result.account.username,
  };
}

/** Where sign-out sends the browser: Entra ID's logout endpoint when `authority` is set, which comes back to the app's home page. */
export function signOutUrl(redirectUri: string, authority: string | undefined): string {
  const home = new URL('/', redirectUri).toString();
  return authority ? `${authority}/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent(home)}` : '/';
}

/** Headers of every response. */
export const SECURITY_HEADERS = {
  'cache-control': 'no-store', // personal pages, and the callback URL carries a code
  'referrer-policy': 'no-referrer', // never send the callback URL (and its code) to another site
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
} as const;

/** A friendly failure page: what happened, and a reference that is safe to show and log. */
export interface Failure {
  status: number;
  message: string;
  reference: string;
}

/** A callback that matches no sign-in of this browser session. */
export const STATE_MISMATCH: Failure = {
  status: 400,
  reference: 'state_mismatch',
  message: 'This sign-in response does not belong to a sign-in started in this browser session.',
};

/** A redemption that returned no account. */
export const NO_ACCOUNT: Failure = { status: 502, reference: 'no_account', message: 'Microsoft Entra ID returned no account.' };

/** Maps an error to a failure page; only error codes and AADSTS numbers, never the error's text. */
export function explain(error: unknown): Failure {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_CODE_ALREADY_REDEEMED':
      return { status: 400, reference: code, message: 'This sign-in link was already used.' };
    case 'ERR_CODE_EXPIRED':
      return { status: 400, reference: code, message: 'The sign-in took too long and expired.' };
    case 'ERR_REDEMPTION_OUTCOME_UNKNOWN':
      return {
        status: 502,
        reference: code,
        message: 'Microsoft Entra ID did not answer in time; we cannot tell whether the sign-in went through.',
      };
    case 'ERR_REDEMPTION_RECORD_CORRUPT':
      return { status: 400, reference: code, message: 'This sign-in link cannot be used. Please sign in again.' };
    case 'ERR_TOKEN_ENDPOINT_UNAVAILABLE':
      return { status: 503, reference: code, message: 'Microsoft Entra ID is not answering right now. Please try again in a moment.' };
  }
  const aadsts = /AADSTS\d+/.exec(error instanceof Error ? error.message : '')?.[0];
  if (aadsts) return { status: 400, reference: aadsts, message: 'Microsoft Entra ID refused the sign-in.' };
  if (typeof code === 'string' && /^ERR_[A-Z_]+$/.test(code))
    return { status: 503, reference: code, message: 'We could not complete the sign-in.' };
  return { status: 500, reference: 'unexpected', message: 'Something went wrong.' };
}

/** Entra ID redirected with an error instead of a code (the user cancelled, consent was refused...). */
export function authorizeError(error: unknown, description: unknown): Failure {
  const aadsts = /AADSTS\d+/.exec(typeof description === 'string' ? description : '')?.[0];
  const reference = aadsts ?? (typeof error === 'string' && /^[a-z_]{1,64}$/.test(error) ? error : 'authorize_error');
  return { status: 400, reference, message: 'The sign-in was cancelled or refused by Microsoft Entra ID.' };
}

/** The line logged for a failure: the method, the path only (the callback's query string holds the code), the reference, and MSAL's correlation id if any. */
export function failureLogLine(method: string, path: string, failure: Failure, error?: unknown): string {
  const correlationId = (error as { correlationId?: unknown } | undefined)?.correlationId;
  const correlation = typeof correlationId === 'string' && correlationId ? ` (correlation id ${correlationId})` : '';
  return `${method} ${path} failed: ${failure.reference}${correlation}`;
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The home page: who is signed in and a sign-out button, or a "Sign in" link. */
export function homePage(user: SignedInUser | undefined): string {
  return user
    ? page(
        'Signed in',
        `<p id="user">Signed in as <strong>${escapeHtml(user.name)}</strong> (${escapeHtml(user.username)}).</p>
<form method="post" action="/signout"><button>Sign out</button></form>`,
      )
    : page('Signed out', '<p id="user">You are signed out.</p><p><a href="/signin">Sign in</a></p>');
}

/** The failure page: the message, the reference, and a "Sign in again" link. */
export function failurePage(failure: Failure): string {
  return page(
    'Sign-in failed',
    `<p>${escapeHtml(failure.message)}</p><p>Reference: <code>${escapeHtml(failure.reference)}</code></p><p><a href="/signin">Sign in again</a></p>`,
  );
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>`;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
