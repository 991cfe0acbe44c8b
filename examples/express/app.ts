/**
 * An Express web app that signs users in with Microsoft Entra ID through msal-distributed-cache.
 * Each authorization code is redeemed once across every instance of the app; a duplicate of the
 * callback (a reload, the back button, a double submit, a load balancer re-sending it to another
 * instance) keeps the user signed in instead of failing with AADSTS54005.
 *
 * Routes: `GET /` (who is signed in), `GET /signin`, `GET <path of the redirect URI>` (the
 * callback), `POST /signout`. `main.ts` runs it; the browser test builds it around plain MSAL too.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import session from 'express-session';
import type { Store } from 'express-session';
import { CryptoProvider } from '@azure/msal-node';
import type { AccountInfo, AuthenticationResult, AuthorizationUrlRequest } from '@azure/msal-node';
import type { DistributedAuthorizationCodeRequest } from 'msal-distributed-cache';

/** What proves that a callback belongs to the sign-in this browser started. */
interface SignIn {
  state: string;
  codeVerifier: string;
  binding: string;
}

declare module 'express-session' {
  interface SessionData {
    signIn: SignIn;
    user: { homeAccountId: string; name: string; username: string };
  }
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

/** Options of {@link createApp}. */
export interface ExampleAppOptions {
  msal: MsalClient;
  /** The redirect URI registered in Entra ID; the same on every instance (the public URL). Its path is the callback route. */
  redirectUri: string;
  /** Signs the session cookie; the same on every instance. */
  sessionSecret: string;
  /** Where sessions live; instances behind one load balancer share one (connect-redis). @defaultValue express-session's MemoryStore */
  sessionStore?: Store;
  /** @defaultValue `['User.Read']` */
  scopes?: string[];
  /** When set, sign-out also ends the Entra ID session (`<authority>/oauth2/v2.0/logout`). */
  authority?: string;
  /** Where failed sign-ins are reported, by reference only (never a code, token or secret). @defaultValue console.warn */
  log?: (message: string) => void;
}

/** A friendly failure page: what happened, and a reference that is safe to show and log. */
interface Failure {
  status: number;
  message: string;
  reference: string;
}

const SESSION_COOKIE = 'sid';

export function createApp(options: ExampleAppOptions): express.Express {
  const { msal, redirectUri } = options;
  const scopes = options.scopes ?? ['User.Read'];
  const log = options.log ?? ((message: string) => console.warn(message));
  const accounts: AccountCache = 'getTokenCache' in msal ? msal.getTokenCache() : msal;
  const pkce = new CryptoProvider();
  // Secure with an https redirect URI; behind a TLS-terminating proxy, set Express's 'trust proxy' too (main.ts: TRUST_PROXY).
  const cookie = { httpOnly: true, sameSite: 'lax', secure: redirectUri.startsWith('https:'), path: '/' } as const;

  const app = express();
  app.disable('x-powered-by');
  app.use((_request, response, next) => {
    response.set({
      'cache-control': 'no-store', // personal pages, and the callback URL carries a code
      'referrer-policy': 'no-referrer', // never send the callback URL (and its code) to another site
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
    });
    next();
  });
  app.use(
    session({
      name: SESSION_COOKIE,
      secret: options.sessionSecret,
      ...(options.sessionStore && { store: options.sessionStore }),
      resave: false,
      saveUninitialized: false, // no session, and no cookie, before a sign-in starts
      // Lax: the cookie goes with Entra ID's redirect to the callback (a top-level GET) and not
      // with cross-site POSTs, which protects POST /signout from cross-site requests.
      cookie,
    }),
  );

  app.get('/', (request, response) => {
    const user = request.session.user;
    response.send(
      user
        ? page(
            'Signed in',
            `<p id="user">Signed in as <strong>${escapeHtml(user.name)}</strong> (${escapeHtml(user.username)}).</p>
<form method="post" action="/signout"><button>Sign out</button></form>`,
          )
        : page('Signed out', '<p id="user">You are signed out.</p><p><a href="/signin">Sign in</a></p>'),
    );
  });

  app.get('/signin', async (request, response) => {
    const { verifier, challenge } = await pkce.generatePkceCodes();
    // The binding is a random value per sign-in, kept in the session. Not the session id: the id
    // changes when the first callback signs the user in (see below), while duplicates of that
    // callback arrive on either side of the change and must all present the same proof.
    const signIn: SignIn = { state: randomToken(), codeVerifier: verifier, binding: randomToken() };
    request.session.signIn = signIn;
    // Query response mode: the callback is a top-level GET, so the SameSite=Lax session cookie
    // comes with it. form_post is a cross-site POST, which would need SameSite=None (HTTPS only).
    const url = await msal.getAuthCodeUrl({
      redirectUri,
      scopes,
      state: signIn.state,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      responseMode: 'query',
    });
    response.redirect(url);
  });

  app.get(new URL(redirectUri).pathname, async (request, response) => {
    const { code, state, error } = request.query;
    const signIn = request.session.signIn;
    if (error !== undefined) return fail(request, response, authorizeError(error, request.query.error_description));
    if (!signIn || typeof state !== 'string' || state !== signIn.state || typeof code !== 'string' || !code) {
      // No sign-in of this browser matches: started elsewhere, or the session ended (signed out).
      return fail(request, response, {
        status: 400,
        reference: 'state_mismatch',
        message: 'This sign-in response does not belong to a sign-in started in this browser session.',
      });
    }
    let result: AuthenticationResult;
    try {
      // A duplicate of this callback (same code, same proof) gets the first redemption's tokens.
      result = await msal.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: signIn.codeVerifier, binding: signIn.binding });
    } catch (redeemError) {
      return fail(request, response, explain(redeemError), redeemError);
    }
    if (!result.account)
      return fail(request, response, { status: 502, reference: 'no_account', message: 'Microsoft Entra ID returned no account.' });
    const claims = result.idTokenClaims as { name?: string; preferred_username?: string };
    const user = {
      homeAccountId: result.account.homeAccountId,
      name: claims.name ?? result.account.name ?? '',
      username: claims.preferred_username ?? result.account.username,
    };
    if (request.session.user?.homeAccountId !== user.homeAccountId) {
      // Signing in raises the session's privileges: give it a new id, so an id planted before
      // sign-in (session fixation) is worthless. The new session keeps the sign-in's proof so
      // that later duplicates of this callback are still answered; a duplicate that was already
      // on its way with the old id and arrives after the switch finds no sign-in and gets the
      // "sign in again" page, while the browser keeps the new, signed-in cookie.
      await regenerate(request);
      request.session.signIn = signIn;
    }
    request.session.user = user;
    response.redirect(303, '/'); // post/redirect/get: the callback URL does not stay in the address bar
  });

  app.post('/signout', async (request, response) => {
    const user = request.session.user;
    if (user) {
      // Removes the account's tokens from the shared cache, for every instance.
      const account = await accounts.getAccountByHomeId(user.homeAccountId);
      if (account) await accounts.removeAccount(account);
    }
    await destroy(request);
    response.clearCookie(SESSION_COOKIE, cookie);
    const home = new URL('/', redirectUri).toString();
    response.redirect(
      303,
      options.authority ? `${options.authority}/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent(home)}` : '/',
    );
  });

  // Anything unexpected: the same friendly page, instead of Express's page with a stack trace.
  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => fail(request, response, explain(error), error));

  function fail(request: Request, response: Response, failure: Failure, error?: unknown): void {
    // The path only: the callback's query string holds the code.
    const correlationId = (error as { correlationId?: unknown } | undefined)?.correlationId;
    const correlation = typeof correlationId === 'string' && correlationId ? ` (correlation id ${correlationId})` : '';
    log(`${request.method} ${request.path} failed: ${failure.reference}${correlation}`);
    response
      .status(failure.status)
      .send(
        page(
          'Sign-in failed',
          `<p>${escapeHtml(failure.message)}</p><p>Reference: <code>${escapeHtml(failure.reference)}</code></p><p><a href="/signin">Sign in again</a></p>`,
        ),
      );
  }

  return app;
}

/** Maps an error to a failure page; only error codes and AADSTS numbers, never the error's text. */
function explain(error: unknown): Failure {
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
  }
  const aadsts = /AADSTS\d+/.exec(error instanceof Error ? error.message : '')?.[0];
  if (aadsts) return { status: 400, reference: aadsts, message: 'Microsoft Entra ID refused the sign-in.' };
  if (typeof code === 'string' && /^ERR_[A-Z_]+$/.test(code))
    return { status: 503, reference: code, message: 'We could not complete the sign-in.' };
  return { status: 500, reference: 'unexpected', message: 'Something went wrong.' };
}

/** Entra ID redirected with an error instead of a code (the user cancelled, consent was refused...). */
function authorizeError(error: unknown, description: unknown): Failure {
  const aadsts = /AADSTS\d+/.exec(typeof description === 'string' ? description : '')?.[0];
  const reference = aadsts ?? (typeof error === 'string' && /^[a-z_]{1,64}$/.test(error) ? error : 'authorize_error');
  return { status: 400, reference, message: 'The sign-in was cancelled or refused by Microsoft Entra ID.' };
}

function regenerate(request: Request): Promise<void> {
  return new Promise((resolve, reject) => request.session.regenerate((error: unknown) => (error ? reject(error) : resolve())));
}

function destroy(request: Request): Promise<void> {
  return new Promise((resolve, reject) => request.session.destroy((error: unknown) => (error ? reject(error) : resolve())));
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
