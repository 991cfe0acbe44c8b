/**
 * The app before the migration, in the shape of msal-node's auth-code-distributed-cache sample:
 * Express and express-session with sessions in Redis, `response_mode=form_post` (Entra ID posts the
 * code to `POST /auth/redirect`), the signed-in `account` kept in the session, tokens through
 * msal-node's `DistributedCachePlugin` (./auth-provider.ts), no PKCE. A callback sent again (the
 * back button, a resubmitted form, a load balancer retrying it) sends the code to Entra ID again:
 * AADSTS54005, an HTTP 500 page.
 *
 * Routes: `GET /` (who is signed in), `GET /profile` (a silent token request), `GET /signin`,
 * `POST /auth/redirect`. Every page but the callback needs a signed-in user.
 */
import express from 'express';
import type { Request, Response } from 'express';
import { ResponseMode } from '@azure/msal-node';
import type { AccountInfo, AuthorizationCodePayload, Configuration } from '@azure/msal-node';
import { CALLBACK_PATH, errorHandler, homePage, newTokenRequest, profilePage, SCOPES, sessions } from '../shared';
import type { RedisClient } from '../shared';
import { AuthProvider } from './auth-provider';

declare module 'express-session' {
  interface SessionData {
    isAuthenticated: boolean;
    account: AccountInfo;
  }
}

/** Options of {@link createApp}. */
export interface BeforeAppOptions {
  /** MSAL's configuration (`auth`). */
  msalConfig: Configuration;
  /** The app's one Redis client: sessions (keys `sess:<id>`) and tokens (keys: the homeAccountId). */
  redis: RedisClient;
  /** The redirect URI registered in Entra ID; its path is {@link CALLBACK_PATH}. */
  redirectUri: string;
  /** Signs the session cookie; the same on every instance. */
  sessionSecret: string;
}

export function createApp(options: BeforeAppOptions): express.Express {
  const { redirectUri } = options;
  const authProvider = new AuthProvider(options.msalConfig, options.redis);
  const app = express();
  app.use(sessions(options.redis, options.sessionSecret));
  app.use(express.urlencoded({ extended: false })); // the form Entra ID posts

  const signIn = async (request: Request, response: Response): Promise<void> => {
    const tokenRequest = newTokenRequest(redirectUri);
    const url = await authProvider.authCodeUrl({ ...tokenRequest, responseMode: ResponseMode.FORM_POST }, request.session.id);
    request.session.tokenRequest = tokenRequest;
    response.redirect(url);
  };
  app.get('/signin', signIn);

  app.post(CALLBACK_PATH, async (request, response) => {
    const payload = request.body as AuthorizationCodePayload;
    const result = await authProvider.tokenByCode({ ...request.session.tokenRequest!, code: payload.code }, payload, request.session.id);
    request.session.isAuthenticated = true;
    request.session.account = result.account!;
    response.redirect('/');
  });

  app.use(async (request, response, next) => (request.session.isAuthenticated ? next() : signIn(request, response)));

  app.get('/', (request, response) => {
    response.send(homePage(request.session.account));
  });

  app.get('/profile', async (request, response) => {
    const result = await authProvider.tokenSilent({ account: request.session.account!, scopes: SCOPES }, request.session.id);
    response.send(profilePage(result));
  });

  app.use(errorHandler);
  return app;
}
