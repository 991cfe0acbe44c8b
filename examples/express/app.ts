/**
 * An Express web app that signs users in with Microsoft Entra ID through msal-distributed-cache.
 * Each authorization code is redeemed once across every instance of the app; a duplicate of the
 * callback (a reload, the back button, a double submit, a load balancer re-sending it to another
 * instance) keeps the user signed in instead of failing with AADSTS54005.
 *
 * Routes: `GET /` (who is signed in), `GET /signin`, `GET <path of the redirect URI>` (the
 * callback), `POST /signout`. `main.ts` runs it; the browser test builds it around plain MSAL too.
 */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import session from 'express-session';
import type { Store } from 'express-session';
import { CryptoProvider } from '@azure/msal-node';
import type { AuthenticationResult } from '@azure/msal-node';
import {
  accountsOf,
  authorizeError,
  explain,
  failureLogLine,
  failurePage,
  homePage,
  NO_ACCOUNT,
  randomToken,
  SECURITY_HEADERS,
  signOutUrl,
  STATE_MISMATCH,
  userOf,
} from '../shared/sign-in';
import type { Failure, MsalClient, SignedInUser, SignIn } from '../shared/sign-in';

export type { AccountCache, MsalClient } from '../shared/sign-in';

declare module 'express-session' {
  interface SessionData {
    signIn: SignIn;
    user: SignedInUser;
  }
}

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

const SESSION_COOKIE = 'sid';

export function createApp(options: ExampleAppOptions): express.Express {
  const { msal, redirectUri } = options;
  const scopes = options.scopes ?? ['User.Read'];
  const log = options.log ?? ((message: string) => console.warn(message));
  const accounts = accountsOf(msal);
  const pkce = new CryptoProvider();
  // Secure with an https redirect URI; behind a TLS-terminating proxy, set Express's 'trust proxy' too (main.ts: TRUST_PROXY).
  const cookie = { httpOnly: true, sameSite: 'lax', secure: redirectUri.startsWith('https:'), path: '/' } as const;

  const app = express();
  app.disable('x-powered-by');
  app.use((_request, response, next) => {
    response.set(SECURITY_HEADERS); // no-store, no-referrer (the callback URL carries a code), CSP
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
    response.send(homePage(request.session.user));
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
      return fail(request, response, STATE_MISMATCH);
    }
    let result: AuthenticationResult;
    try {
      // A duplicate of this callback (same code, same proof) gets the first redemption's tokens.
      result = await msal.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: signIn.codeVerifier, binding: signIn.binding });
    } catch (redeemError) {
      return fail(request, response, explain(redeemError), redeemError);
    }
    const user = userOf(result);
    if (!user) return fail(request, response, NO_ACCOUNT);
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
    response.redirect(303, signOutUrl(redirectUri, options.authority));
  });

  // Anything unexpected: the same friendly page, instead of Express's page with a stack trace.
  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => fail(request, response, explain(error), error));

  function fail(request: Request, response: Response, failure: Failure, error?: unknown): void {
    log(failureLogLine(request.method, request.path, failure, error)); // request.path: without the query string, which holds the code
    response.status(failure.status).send(failurePage(failure));
  }

  return app;
}

function regenerate(request: Request): Promise<void> {
  return new Promise((resolve, reject) => request.session.regenerate((error: unknown) => (error ? reject(error) : resolve())));
}

function destroy(request: Request): Promise<void> {
  return new Promise((resolve, reject) => request.session.destroy((error: unknown) => (error ? reject(error) : resolve())));
}
