// The Fastify example (examples/fastify) over HTTP: the test plays the browser with fetch
// (redirect: 'manual') and a small cookie jar, and the fake Entra ID's /authorize signs the user in.
// The apps listen on loopback ports in this process (the test environment's fetch trusts the test
// CA); the two-instance case shares the run's real Redis for sessions, tokens and locks.
// With DistributedClientApplication duplicates of the callback keep the user signed in and the code
// reaches the token endpoint once; the same app on plain ConfidentialClientApplication shows AADSTS54005.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createClient } from 'redis';
import type { SessionStore } from '@fastify/session';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from 'msal-distributed-cache';
import { DEFAULT_USER } from 'msal-distributed-cache/testing';
import type { FakeEntraId } from 'msal-distributed-cache/testing';
import { createApp, redisSessionStore } from '../../examples/fastify/app';
import type { ExampleAppOptions, MsalClient } from '../../examples/fastify/app';
import { accountsOf } from '../../examples/shared/sign-in';
import { startFakeEntraId } from '../helpers/entra';
import { barrier } from '../helpers/barrier';

/** The public URL of the app (a load balancer's), the same for every instance; the browser's requests go to the instances' own ports. */
const PUBLIC_URL = 'http://app.example.test';
const REDIRECT_URI = `${PUBLIC_URL}/auth/callback`;
const SESSION_SECRET = 'test session secret, the same on every instance';
const SIGNED_IN = `Signed in as <strong>${DEFAULT_USER.name}</strong> (${DEFAULT_USER.username}).`;
const SIGNED_OUT = 'You are signed out.';

let entra: FakeEntraId;
let cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  entra = await startFakeEntraId();
});

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const cleanup of pending) await cleanup();
});

afterAll(async () => {
  await entra?.close();
});

/** What the browser received: every response of the apps, to check that none shows a secret. */
interface Seen {
  url: string;
  status: number;
  /** Every header line, Set-Cookie included. */
  headers: string;
  location: string | null;
  setCookies: string[];
  body: string;
}

/** One browser: a cookie jar (by name; cookies are per host, not per port, so both instances get them) and what it was shown. */
class Browser {
  readonly seen: Seen[] = [];
  private readonly jar = new Map<string, string>();

  cookie(name: string): string | undefined {
    return this.jar.get(name);
  }

  /** Sends a request as the browser would, with its cookies (or the given `cookie` header, a stale one), and keeps what comes back. */
  async fetch(url: string, init: { method?: string; body?: string; contentType?: string; cookie?: string } = {}): Promise<Seen> {
    const cookie = init.cookie ?? [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { ...(cookie && { cookie }), ...(init.contentType && { 'content-type': init.contentType }) },
      ...(init.body !== undefined && { body: init.body }),
    });
    const setCookies = response.headers.getSetCookie();
    const seen: Seen = {
      url,
      status: response.status,
      headers: [
        ...[...response.headers].map(([name, value]) => `${name}: ${value}`),
        ...setCookies.map((line) => `set-cookie: ${line}`),
      ].join('\n'),
      location: response.headers.get('location'),
      setCookies,
      body: await response.text(),
    };
    for (const line of setCookies) this.store(line);
    this.seen.push(seen);
    return seen;
  }

  private store(setCookie: string): void {
    const [pair = '', ...attributes] = setCookie.split(';').map((part) => part.trim());
    const separator = pair.indexOf('=');
    const [name, value] = [pair.slice(0, separator), pair.slice(separator + 1)];
    const expired = attributes.some((attribute) => {
      const [key = '', argument = ''] = attribute.split('=');
      if (key.toLowerCase() === 'max-age') return Number(argument) <= 0;
      if (key.toLowerCase() === 'expires') return Date.parse(argument) <= Date.now();
      return false;
    });
    if (expired) this.jar.delete(name);
    else this.jar.set(name, value);
  }
}

/** The session id in a signed `sid` cookie value (`<id>.<signature>`, URL-encoded). */
function sessionIdOf(cookieValue: string | undefined): string | undefined {
  if (cookieValue === undefined) return undefined;
  const decoded = decodeURIComponent(cookieValue);
  return decoded.slice(0, decoded.lastIndexOf('.'));
}

function sessionIn(store: SessionStore, sessionId: string): Promise<unknown> {
  return new Promise((resolve, reject) => store.get(sessionId, (error, session) => (error ? reject(error) : resolve(session ?? null))));
}

interface Instance {
  url: string;
  /** What the app logged (failed sign-ins, by reference). */
  logs: string[];
}

/** Serves the example on a loopback port (port 0), its redirect URI the public one. */
async function serve(options: Pick<ExampleAppOptions, 'msal' | 'sessionStore'>): Promise<Instance> {
  const logs: string[] = [];
  const app = createApp({
    sessionSecret: SESSION_SECRET,
    redirectUri: REDIRECT_URI,
    authority: entra.authority, // sign-out goes through the fake's logout endpoint
    log: (line) => logs.push(line),
    ...options,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, logs };
}

/** The secrets the app handled (PKCE verifiers, tokens), recorded as they pass between the app and MSAL. */
interface Secrets {
  verifiers: string[];
  tokens: string[];
}

/**
 * The real client, seen from the app: records the verifiers and tokens, and holds the first
 * `gate` callers until all of them have arrived (so that duplicates sent at once are all in
 * flight, their sessions loaded, before any is redeemed).
 */
function watched(client: MsalClient, secrets: Secrets, gate: () => Promise<void> = async () => {}): MsalClient {
  const accounts = accountsOf(client);
  return {
    getAuthCodeUrl: (request) => client.getAuthCodeUrl(request),
    acquireTokenByCode: async (request) => {
      if (request.codeVerifier) secrets.verifiers.push(request.codeVerifier);
      await gate();
      const result = await client.acquireTokenByCode(request);
      secrets.tokens.push(result.accessToken, result.idToken);
      return result;
    },
    getAccountByHomeId: (homeAccountId) => accounts.getAccountByHomeId(homeAccountId),
    removeAccount: (account) => accounts.removeAccount(account),
  };
}

/** Counts what the library did with each callback. */
function redeemEvents(clients: DistributedClientApplication[]): { redeemed: number; joined: number; answeredFromCache: number } {
  const counts = { redeemed: 0, joined: 0, answeredFromCache: 0 };
  for (const client of clients) {
    client.on('redeem:redeemed', () => counts.redeemed++);
    client.on('redeem:joined', () => counts.joined++);
    client.on('redeem:answered-from-cache', () => counts.answeredFromCache++);
  }
  return counts;
}

/** An in-memory DistributedClientApplication, closed after the test. */
function inMemoryClient(): DistributedClientApplication {
  const cache = new DistributedTokenCache();
  const msal = new DistributedClientApplication(entra.msalConfig(), { cache });
  cleanups.push(async () => {
    await msal.close();
    await cache.close();
  });
  return msal;
}

/** GET /signin, then the fake's /authorize as the browser follows the redirect: the callback's path and query (for any instance), and the code. */
async function startSignIn(browser: Browser, instance: Instance): Promise<{ callback: string; code: string }> {
  const signIn = await browser.fetch(`${instance.url}/signin`);
  expect(signIn.status).toBe(302);
  expect(signIn.location).toMatch(new RegExp(`^${entra.authority}/oauth2/v2.0/authorize\\?`));
  const authorizeUrl = new URL(signIn.location!);
  expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorizeUrl.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
  const { code, redirectUrl } = await entra.authorize(signIn.location!);
  const callback = new URL(redirectUrl);
  expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
  return { callback: `${callback.pathname}${callback.search}`, code };
}

async function home(browser: Browser, instance: Instance): Promise<string> {
  const page = await browser.fetch(`${instance.url}/`);
  expect(page.status).toBe(200);
  if (page.body.includes(SIGNED_IN)) return 'signed in';
  if (page.body.includes(SIGNED_OUT)) return 'signed out';
  throw new Error(`the home page shows neither state:\n${page.body}`);
}

function authorizationCodeGrants(code: string): number {
  return entra.tokenCallCount({ grantType: 'authorization_code', code });
}

/** No response shows the code, the client secret, a PKCE verifier or a token, in its headers or its body. */
function expectNothingSecretShown(browser: Browser, code: string, secrets: Secrets): void {
  const secret = entra.msalConfig().auth.clientSecret;
  expect(secrets.verifiers.length).toBeGreaterThan(0);
  expect(secrets.tokens.length).toBeGreaterThan(0);
  const values = [code, secret, ...secrets.verifiers, ...secrets.tokens, 'fake-rt.'];
  for (const { url, status, headers, body } of browser.seen) {
    const leaks = [
      ...values.filter((value) => headers.includes(value)).map(() => 'header'),
      ...[...values, 'eyJ'].filter((value) => body.includes(value)).map(() => 'body'),
    ];
    expect({ url, status, leaks }).toEqual({ url, status, leaks: [] });
  }
}

function expectSecurityHeaders(seen: Seen): void {
  expect(seen.headers).toContain('cache-control: no-store');
  expect(seen.headers).toContain('referrer-policy: no-referrer');
  expect(seen.headers).toContain("content-security-policy: default-src 'none'");
}

describe('Fastify example over HTTP, one instance (in-memory sessions and cache)', () => {
  it('signs in end to end: the home page shows the user, one authorization_code grant, a new session id at sign-in', async () => {
    const secrets: Secrets = { verifiers: [], tokens: [] };
    const app = await serve({ msal: watched(inMemoryClient(), secrets) });
    const browser = new Browser();
    const grantsBefore = entra.tokenCallCount({ grantType: 'authorization_code' });

    expect(await home(browser, app)).toBe('signed out');
    expect(browser.cookie('sid')).toBeUndefined(); // no session before a sign-in starts
    const { callback, code } = await startSignIn(browser, app);
    const sessionAtSignIn = browser.cookie('sid');
    expect(sessionAtSignIn).toEqual(expect.any(String));

    const signedIn = await browser.fetch(`${app.url}${callback}`);
    expect({ status: signedIn.status, location: signedIn.location }).toEqual({ status: 303, location: '/' });
    expect(await home(browser, app)).toBe('signed in');
    expect(browser.seen.at(-1)!.body).toContain(SIGNED_IN);
    // A new session id once signed in (session fixation).
    expect(browser.cookie('sid')).toEqual(expect.any(String));
    expect(sessionIdOf(browser.cookie('sid'))).not.toBe(sessionIdOf(sessionAtSignIn));

    expect(entra.tokenCallCount({ grantType: 'authorization_code' }) - grantsBefore).toBe(1);
    expect(authorizationCodeGrants(code)).toBe(1);
    expect(app.logs).toEqual([]);
    for (const seen of browser.seen) expectSecurityHeaders(seen);
    expectNothingSecretShown(browser, code, secrets);
  });

  it('DistributedClientApplication: the callback sent twice at once with the pre-sign-in cookie, then again with the new one, keeps the user signed in; one grant; the library answered the duplicates', async () => {
    const secrets: Secrets = { verifiers: [], tokens: [] };
    const msal = inMemoryClient();
    const events = redeemEvents([msal]);
    const app = await serve({ msal: watched(msal, secrets, barrier(2)) });
    const browser = new Browser();

    const { callback, code } = await startSignIn(browser, app);
    const preSignInCookie = `sid=${browser.cookie('sid')}`;
    const both = await Promise.all([browser.fetch(`${app.url}${callback}`), browser.fetch(`${app.url}${callback}`)]);
    for (const response of both) {
      expect({ status: response.status, location: response.location }).toEqual({ status: 303, location: '/' });
      // Each regenerated the session it loaded (the pre-sign-in one): a new, signed-in cookie.
      expect(response.setCookies).toEqual([expect.stringMatching(/^sid=/)]);
      expect(response.setCookies[0]).not.toContain(preSignInCookie);
    }
    expect(await home(browser, app)).toBe('signed in');

    const again = await browser.fetch(`${app.url}${callback}`);
    expect({ status: again.status, location: again.location }).toEqual({ status: 303, location: '/' });
    expect(await home(browser, app)).toBe('signed in');

    // A duplicate that left with the pre-sign-in cookie and arrives now: that session was replaced,
    // so it gets the "sign in again" page; its response leaves the browser's signed-in cookie alone.
    const stale = await browser.fetch(`${app.url}${callback}`, { cookie: preSignInCookie });
    expect(stale.status).toBe(400);
    expect(stale.body).toContain('state_mismatch');
    expect(stale.setCookies).toEqual([]);
    expect(await home(browser, app)).toBe('signed in');

    expect(browser.seen.filter(({ body }) => body.includes('AADSTS54005'))).toEqual([]);
    expect(authorizationCodeGrants(code)).toBe(1);
    expect(events.redeemed).toBe(1);
    expect(events.joined + events.answeredFromCache).toBe(2); // the second of the pair, and the later one
    expect(app.logs).toEqual(['GET /auth/callback failed: state_mismatch']);
    expectNothingSecretShown(browser, code, secrets);
  });

  it('plain ConfidentialClientApplication: the same steps show AADSTS54005 and redeem the code again (so the test above can fail)', async () => {
    const secrets: Secrets = { verifiers: [], tokens: [] };
    const app = await serve({ msal: watched(new ConfidentialClientApplication(entra.msalConfig()), secrets, barrier(2)) });
    const browser = new Browser();

    const { callback, code } = await startSignIn(browser, app);
    const both = await Promise.all([browser.fetch(`${app.url}${callback}`), browser.fetch(`${app.url}${callback}`)]);
    expect(both.map(({ status }) => status).sort()).toEqual([303, 400]);
    expect(await home(browser, app)).toBe('signed in');
    const again = await browser.fetch(`${app.url}${callback}`);
    expect(again.status).toBe(400);

    const rejected = browser.seen.filter(({ body }) => body.includes('AADSTS54005'));
    expect(rejected).toHaveLength(2);
    for (const { body } of rejected) expect(body).toContain('Sign in again');
    expect(authorizationCodeGrants(code)).toBe(3);
    expect(authorizationCodeGrants(code)).toBeGreaterThan(1);
    const failed = expect.stringMatching(/^GET \/auth\/callback failed: AADSTS54005 \(correlation id [0-9a-f-]+\)$/);
    expect(app.logs).toEqual([failed, failed]);
    expectNothingSecretShown(browser, code, secrets);
  });
});

describe('Fastify example over HTTP, two instances sharing Redis (sessions, tokens and locks)', () => {
  /** Two Fastify servers, each with its own Redis connections, DistributedTokenCache and DistributedClientApplication, on one key prefix. */
  async function twoInstances(secrets: Secrets): Promise<{
    instances: Instance[];
    clients: DistributedClientApplication[];
    sessionStore: SessionStore;
  }> {
    const url = process.env.REDIS_URL!;
    const prefix = `example-fastify-test:${randomUUID()}:`;
    const gate = barrier(2);
    const instances: Instance[] = [];
    const clients: DistributedClientApplication[] = [];
    let sessionStore!: SessionStore;
    for (let index = 0; index < 2; index++) {
      const sessionClient = createClient({ url });
      await sessionClient.connect();
      cleanups.push(() => sessionClient.close());
      sessionStore = redisSessionStore({ client: sessionClient, prefix: `${prefix}sess:` });
      const cache = new DistributedTokenCache({
        store: new Keyv({ store: new KeyvRedis(url) }),
        lockStore: new RedisLockStore({ url, keyPrefix: prefix }),
        keyPrefix: prefix,
      });
      const msal = new DistributedClientApplication(entra.msalConfig(), { cache });
      cleanups.push(async () => {
        await msal.close();
        await cache.close();
      });
      await msal.warmUp();
      clients.push(msal);
      instances.push(await serve({ msal: watched(msal, secrets, gate), sessionStore }));
    }
    return { instances, clients, sessionStore };
  }

  it('the callback sent to both instances at once: one grant, signed in on both; sign-out on one removes the account and the session for both', async () => {
    const secrets: Secrets = { verifiers: [], tokens: [] };
    const { instances, clients, sessionStore } = await twoInstances(secrets);
    const [a, b] = instances as [Instance, Instance];
    const events = redeemEvents(clients);
    const browser = new Browser();

    const { callback, code } = await startSignIn(browser, a);
    const both = await Promise.all([browser.fetch(`${a.url}${callback}`), browser.fetch(`${b.url}${callback}`)]);
    for (const response of both) expect({ status: response.status, location: response.location }).toEqual({ status: 303, location: '/' });
    expect(authorizationCodeGrants(code)).toBe(1);
    expect(events).toEqual({ redeemed: 1, joined: 0, answeredFromCache: 1 }); // the duplicate waited for the other instance's redemption
    expect([await home(browser, a), await home(browser, b)]).toEqual(['signed in', 'signed in']);
    expect(browser.seen.filter(({ body }) => body.includes('AADSTS54005'))).toEqual([]);

    const homeAccountId = entra.homeAccountIdOf(DEFAULT_USER);
    for (const client of clients) expect(await client.getAccountByHomeId(homeAccountId)).toMatchObject({ homeAccountId });
    const sessionId = sessionIdOf(browser.cookie('sid'))!;
    expect(await sessionIn(sessionStore, sessionId)).toMatchObject({ user: { homeAccountId } });

    // The sign-out button is a form: it posts application/x-www-form-urlencoded.
    const signOut = await browser.fetch(`${b.url}/signout`, { method: 'POST', contentType: 'application/x-www-form-urlencoded', body: '' });
    expect(signOut.status).toBe(303);
    expect(signOut.location).toBe(`${entra.authority}/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent(`${PUBLIC_URL}/`)}`);
    expect(browser.cookie('sid')).toBeUndefined();
    for (const client of clients) expect(await client.getAccountByHomeId(homeAccountId)).toBeNull();
    expect(await sessionIn(sessionStore, sessionId)).toBeNull();
    expect([await home(browser, a), await home(browser, b)]).toEqual(['signed out', 'signed out']);

    // The callback again, after sign-out: no session, no sign-in.
    const after = await browser.fetch(`${a.url}${callback}`);
    expect(after.status).toBe(400);
    expect(after.body).toContain('state_mismatch');
    expect(authorizationCodeGrants(code)).toBe(1);
    for (const client of clients) expect(await client.getAccountByHomeId(homeAccountId)).toBeNull();
    expect([...a.logs, ...b.logs]).toEqual(['GET /auth/callback failed: state_mismatch']);
    expectNothingSecretShown(browser, code, secrets);
  });
});
