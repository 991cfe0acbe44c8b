/**
 * The same app after the migration to msal-distributed-cache (the steps are in docs/migrating.md):
 * one `DistributedClientApplication` per process over a `DistributedTokenCache` (Keyv on
 * `@keyv/redis`) and a `RedisLockStore`, all on the app's one Redis client; PKCE, with the verifier
 * in the session; `homeAccountId` in the session instead of the account; `form_post` kept.
 * A callback sent again, on this instance or another one, is answered with the first
 * redemption's tokens (its PKCE verifier proves it belongs to the same sign-in), and the code
 * reaches Entra ID once. A callback of a sign-in the user already completed is refused
 * (`ERR_CODE_ALREADY_REDEEMED`) and sends them home; the other typed errors show a page with a
 * "Sign in again" link.
 *
 * Routes: `GET /` (who is signed in), `GET /profile` (a silent token request), `GET /signin`,
 * `POST /auth/redirect`. Every page but the callback needs a signed-in user.
 */
import express from 'express';
import type { Request, Response } from 'express';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { CryptoProvider, ResponseMode } from '@azure/msal-node';
import type { AuthorizationCodePayload, Configuration } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from 'msal-distributed-cache';
import { explain, failureLogLine, failurePage, STATE_MISMATCH } from '../../shared/sign-in';
import type { Failure } from '../../shared/sign-in';
import { CALLBACK_PATH, errorHandler, homePage, newTokenRequest, profilePage, SCOPES, sessions } from '../shared';
import type { RedisClient } from '../shared';

declare module 'express-session' {
  interface SessionData {
    /** The PKCE verifier of the sign-in in progress: a duplicate of its callback presents it too. */
    pkceVerifier: string;
    /** Who is signed in: the key of their partition of the token cache. */
    homeAccountId: string;
  }
}

/**
 * The token cache and MSAL client of the app, on its one Redis client (also the session store's).
 * `cache.close()` closes that client.
 */
export function createMsal(msalConfig: Configuration, redis: RedisClient): DistributedClientApplication {
  const cache = new DistributedTokenCache({
    store: new Keyv({ store: new KeyvRedis(redis) }),
    lockStore: new RedisLockStore({ client: redis }),
  });
  return new DistributedClientApplication(msalConfig, { cache });
}

/** Options of {@link createApp}. */
export interface AfterAppOptions {
  /** From {@link createMsal}: one for the whole process. */
  msal: DistributedClientApplication;
  /** The app's one Redis client: here for the sessions (keys `sess:<id>`). */
  redis: RedisClient;
  /** The redirect URI registered in Entra ID; its path is {@link CALLBACK_PATH}. */
  redirectUri: string;
  /** Signs the session cookie; the same on every instance. */
  sessionSecret: string;
  /** Where failed sign-ins are reported, by reference only (never a code or token). @defaultValue console.warn */
  log?: (message: string) => void;
}

export function createApp(options: AfterAppOptions): express.Express {
  const { msal, redirectUri } = options;
  const log = options.log ?? ((message: string) => console.warn(message));
  const pkce = new CryptoProvider();
  const app = express();
  app.use(sessions(options.redis, options.sessionSecret));
  app.use(express.urlencoded({ extended: false })); // the form Entra ID posts

  const signIn = async (request: Request, response: Response): Promise<void> => {
    const tokenRequest = newTokenRequest(redirectUri);
    const { verifier, challenge } = await pkce.generatePkceCodes();
    const url = await msal.getAuthCodeUrl({
      ...tokenRequest,
      responseMode: ResponseMode.FORM_POST,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
    });
    request.session.tokenRequest = tokenRequest;
    request.session.pkceVerifier = verifier;
    response.redirect(url);
  };
  app.get('/signin', signIn);

  app.post(CALLBACK_PATH, async (request, response) => {
    const { tokenRequest, pkceVerifier } = request.session;
    if (!tokenRequest || !pkceVerifier) return fail(request, response, STATE_MISMATCH); // no sign-in started in this browser
    const payload = request.body as AuthorizationCodePayload;
    try {
      const result = await msal.acquireTokenByCode({ ...tokenRequest, code: payload.code, codeVerifier: pkceVerifier }, payload);
      request.session.homeAccountId = result.account!.homeAccountId;
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      // The callback of a sign-in this user already completed (the back button after signing in
      // again): they are signed in, so send them home rather than to an error page.
      if (code === 'ERR_CODE_ALREADY_REDEEMED' && request.session.homeAccountId) return response.redirect('/');
      if (typeof code !== 'string' || !code.startsWith('ERR_')) throw error; // MSAL's own errors: the error handler
      return fail(request, response, explain(error), error);
    }
    response.redirect('/');
  });

  app.use(async (request, response, next) => (request.session.homeAccountId ? next() : signIn(request, response)));

  app.get('/', async (request, response) => {
    response.send(homePage(await msal.getAccountByHomeId(request.session.homeAccountId!)));
  });

  app.get('/profile', async (request, response) => {
    const result = await msal.acquireTokenSilent({ homeAccountId: request.session.homeAccountId!, scopes: SCOPES });
    response.send(profilePage(result));
  });

  app.use(errorHandler);

  function fail(request: Request, response: Response, failure: Failure, error?: unknown): void {
    log(failureLogLine(request.method, request.path, failure, error));
    response.status(failure.status).send(failurePage(failure));
  }

  return app;
}
