/**
 * A Fastify 5 web app that signs users in with Microsoft Entra ID through msal-distributed-cache: the
 * Express example (examples/express/app.ts), route for route, on `@fastify/cookie` and
 * `@fastify/session`. Each authorization code is redeemed once across every instance of the app; a
 * duplicate of the callback (a reload, the back button, a double submit, a load balancer re-sending
 * it to another instance) keeps the user signed in instead of failing with AADSTS54005.
 *
 * Routes: `GET /` (who is signed in), `GET /signin`, `GET <path of the redirect URI>` (the
 * callback), `POST /signout`. `main.ts` runs it; the test builds it around plain MSAL too.
 */
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import type { SessionStore } from '@fastify/session';
import { RedisStore } from 'connect-redis';
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

declare module 'fastify' {
  interface Session {
    /** The sign-in in progress (and, after it, the proof its duplicates present). */
    signIn?: SignIn;
    /** Who is signed in. */
    user?: SignedInUser;
  }
}

/** Options of {@link createApp}. */
export interface ExampleAppOptions {
  msal: MsalClient;
  /** The redirect URI registered in Entra ID; the same on every instance (the public URL). Its path is the callback route. */
  redirectUri: string;
  /** Signs the session cookie; the same on every instance. At least 32 characters (`@fastify/session` refuses shorter ones). */
  sessionSecret: string;
  /** Where sessions live; instances behind one load balancer share one (connect-redis). @defaultValue `@fastify/session`'s MemoryStore */
  sessionStore?: SessionStore;
  /** @defaultValue `['User.Read']` */
  scopes?: string[];
  /** When set, sign-out also ends the Entra ID session (`<authority>/oauth2/v2.0/logout`). */
  authority?: string;
  /** Where failed sign-ins are reported, by reference only (never a code, token or secret). @defaultValue console.warn */
  log?: (message: string) => void;
  /**
   * Fastify's `trustProxy`, behind a TLS-terminating proxy: with an https redirect URI the session
   * cookie is `Secure`, and `@fastify/session` neither saves the session nor sends the cookie on a
   * request it does not see as https. @defaultValue false
   */
  trustProxy?: FastifyServerOptions['trustProxy'];
}

const SESSION_COOKIE = 'sid';

/**
 * connect-redis's `RedisStore` (over a node-redis client) as the session store of
 * {@link ExampleAppOptions}: @fastify/session uses express-session's store interface, so it works
 * unchanged.
 */
export function redisSessionStore(options: ConstructorParameters<typeof RedisStore>[0]): SessionStore {
  // The cast: connect-redis types sessions as express-session's SessionData, which the Express
  // example augments, with other fields, in this repository's one TypeScript program. In an app
  // of its own, `store: new RedisStore(...)` type-checks as it is (docs/fastify.md).
  return new RedisStore(options) as unknown as SessionStore;
}

/** The app, not listening: `await app.listen(...)`, or `app.inject(...)`; `app.close()` stops it. */
export function createApp(options: ExampleAppOptions): FastifyInstance {
  const { msal, redirectUri } = options;
  const scopes = options.scopes ?? ['User.Read'];
  const log = options.log ?? ((message: string) => console.warn(message));
  const accounts = accountsOf(msal);
  const pkce = new CryptoProvider();
  const cookie = { httpOnly: true, sameSite: 'lax', secure: redirectUri.startsWith('https:'), path: '/' } as const;

  // No request logging: Fastify's logger would write the callback's URL, which carries the code.
  const app = Fastify({ trustProxy: options.trustProxy ?? false });
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS); // no-store, no-referrer (the callback URL carries a code), CSP
  });
  app.register(fastifyCookie);
  app.register(fastifySession, {
    cookieName: SESSION_COOKIE,
    secret: options.sessionSecret,
    ...(options.sessionStore && { store: options.sessionStore }),
    saveUninitialized: false, // no session, and no cookie, before a sign-in starts
    // Save a session only when it changed (express-session's resave: false). With the default
    // (true), every response saves the session it loaded: a duplicate of the callback finishing
    // after POST /signout would write the destroyed session back.
    rolling: false,
    // Lax: the cookie goes with Entra ID's redirect to the callback (a top-level GET) and not with
    // cross-site POSTs, which protects POST /signout from cross-site requests.
    cookie,
  });
  // The sign-out button is an HTML form: it posts application/x-www-form-urlencoded, which Fastify
  // does not parse by default (it answers 415). The app reads no form field.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_request, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );

  app.get('/', async (request, reply) => html(reply, 200, homePage(request.session.user)));

  app.get('/signin', async (request, reply) => {
    const { verifier, challenge } = await pkce.generatePkceCodes();
    // The binding is a random value per sign-in, kept in the session. Not the session id: the id
    // changes when the first callback signs the user in (see below), while duplicates of that
    // callback arrive on either side of the change and must all present the same proof.
    const signIn: SignIn = { state: randomToken(), codeVerifier: verifier, binding: randomToken() };
    request.session.signIn = signIn;
    // Query response mode: the callback is a top-level GET, so the SameSite=Lax session cookie
    // comes with it. form_post is a cross-site POST, which would need SameSite=None (HTTPS only).
    // @fastify/session saves the session in an onSend hook, before this redirect leaves.
    const url = await msal.getAuthCodeUrl({
      redirectUri,
      scopes,
      state: signIn.state,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      responseMode: 'query',
    });
    return reply.redirect(url);
  });

  app.get(new URL(redirectUri).pathname, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { code, state, error } = query;
    const signIn = request.session.signIn;
    if (error !== undefined) return fail(request, reply, authorizeError(error, query.error_description));
    if (!signIn || typeof state !== 'string' || state !== signIn.state || typeof code !== 'string' || !code) {
      // No sign-in of this browser matches: started elsewhere, or the session ended (signed out).
      await keepCookieOfAReplacedSession(request);
      return fail(request, reply, STATE_MISMATCH);
    }
    let result: AuthenticationResult;
    try {
      // A duplicate of this callback (same code, same proof) gets the first redemption's tokens.
      result = await msal.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: signIn.codeVerifier, binding: signIn.binding });
    } catch (redeemError) {
      return fail(request, reply, explain(redeemError), redeemError);
    }
    const user = userOf(result);
    if (!user) return fail(request, reply, NO_ACCOUNT);
    if (request.session.user?.homeAccountId !== user.homeAccountId) {
      // Signing in raises the session's privileges: give it a new id, so an id planted before
      // sign-in (session fixation) is worthless. regenerate() deletes the old session from the
      // store and keeps the listed fields: the sign-in's proof moves into the new session, so
      // that later duplicates of this callback are still answered; a duplicate that was already
      // on its way with the old id and arrives after the switch finds no sign-in and gets the
      // "sign in again" page, while the browser keeps the new, signed-in cookie.
      await request.session.regenerate(['signIn']);
    }
    request.session.user = user;
    return reply.redirect('/', 303); // post/redirect/get: the callback URL does not stay in the address bar
  });

  app.post('/signout', async (request, reply) => {
    const user = request.session.user;
    if (user) {
      // Removes the account's tokens from the shared cache, for every instance.
      const account = await accounts.getAccountByHomeId(user.homeAccountId);
      if (account) await accounts.removeAccount(account);
    }
    await request.session.destroy();
    reply.clearCookie(SESSION_COOKIE, cookie);
    return reply.redirect(signOutUrl(redirectUri, options.authority), 303);
  });

  // Anything unexpected: the same friendly page, instead of Fastify's JSON error.
  app.setErrorHandler((error, request, reply) => fail(request, reply, explain(error), error));

  function fail(request: FastifyRequest, reply: FastifyReply, failure: Failure, error?: unknown): FastifyReply {
    const path = request.url.split('?', 1)[0] ?? ''; // without the query string, which holds the code
    log(failureLogLine(request.method, path, failure, error));
    return html(reply, failure.status, failurePage(failure));
  }

  return app;
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

/**
 * A duplicate of the callback that left with the pre-sign-in cookie, and arrives after the first
 * one replaced that session, finds no session: @fastify/session gives it a new, empty one, and its
 * response would clear the session cookie, which the browser by now holds for the new, signed-in
 * session (express-session leaves the cookie alone). Dropping the empty session, never saved,
 * leaves the browser's cookie as it is.
 */
async function keepCookieOfAReplacedSession(request: FastifyRequest): Promise<void> {
  const sent = request.cookies[SESSION_COOKIE];
  const { session } = request;
  if (sent !== undefined && sent !== session.encryptedSessionId && !session.signIn && !session.user) await session.destroy();
}
