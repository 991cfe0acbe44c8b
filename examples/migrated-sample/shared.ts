/**
 * What the two apps of this example share, unchanged by the migration: the Redis client type, the
 * sessions (express-session in Redis through connect-redis, under `sess:<id>`, as in msal-node's
 * sample), the sign-in request kept in the session, the pages, and the error handler.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import type { createClient } from 'redis';
import type { AccountInfo, AuthenticationResult } from '@azure/msal-node';
import { escapeHtml, page, randomToken } from '../shared/sign-in';

/** A connected node-redis client: one per process, for the sessions and (before the migration) the tokens. */
export type RedisClient = ReturnType<typeof createClient>;

/** The path of the redirect URI: Entra ID posts the code there (`response_mode=form_post`). */
export const CALLBACK_PATH = '/auth/redirect';

export const SCOPES = ['User.Read'];

/** The authorization request of the sign-in in progress, kept in the session for the callback (as in msal-node's sample). */
export interface TokenRequest {
  redirectUri: string;
  scopes: string[];
  state: string;
}

declare module 'express-session' {
  interface SessionData {
    tokenRequest: TokenRequest;
  }
}

/** A new sign-in's authorization request: a random `state` against forged callbacks. */
export function newTokenRequest(redirectUri: string): TokenRequest {
  return { redirectUri, scopes: SCOPES, state: randomToken() };
}

/**
 * Sessions in Redis (connect-redis, keys `sess:<id>`), shared by every instance. The cookie has
 * no SameSite attribute, as in the sample: with `response_mode=form_post` the callback is a
 * cross-site POST, which a `SameSite=Lax` cookie does not go with. Over HTTPS, set
 * `sameSite: 'none', secure: true` instead.
 */
export function sessions(redis: RedisClient, secret: string): RequestHandler {
  return session({
    store: new RedisStore({ client: redis }),
    secret,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: false },
  });
}

/** The home page: who is signed in, or (after the migration) that their tokens are gone from the cache. */
export function homePage(account: Pick<AccountInfo, 'name' | 'username'> | null | undefined): string {
  return account
    ? page(
        'Signed in',
        `<p id="user">Signed in as <strong>${escapeHtml(account.name ?? '')}</strong> (${escapeHtml(account.username)}).</p><p><a href="/profile">Profile</a></p>`,
      )
    : page('Signed out', '<p id="user">Your tokens are no longer in the cache.</p><p><a href="/signin">Sign in again</a></p>');
}

/** What `/profile` shows of a silent token request (never the token). */
export function profilePage(result: AuthenticationResult): string {
  const source = result.fromCache ? 'from the token cache' : 'from Microsoft Entra ID';
  return page(
    'Profile',
    `<p id="token">An access token for ${escapeHtml(result.account?.username ?? '')}, ${source}, valid until ${escapeHtml(result.expiresOn?.toISOString() ?? '?')}.</p><p><a href="/">Home</a></p>`,
  );
}

/** The sample's error page: the error's status (else 500) and message. */
export function errorHandler(error: unknown, _request: Request, response: Response, _next: NextFunction): void {
  const status = (error as { status?: unknown } | null)?.status;
  const message = error instanceof Error ? error.message : String(error);
  response.status(typeof status === 'number' ? status : 500).send(page('Error', `<p id="error">${escapeHtml(message)}</p>`));
}
