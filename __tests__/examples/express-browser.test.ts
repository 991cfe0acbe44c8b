// The Express example (examples/express) in a real browser: headless Chromium signs in through the
// fake Entra ID's /authorize, then sends the callback again the ways browsers and load balancers do
// (the callback URL reloaded, back and forward, two tabs at once, two instances at once). With
// DistributedClientApplication the user stays signed in and the code reaches the token endpoint
// once; the same app on plain ConfidentialClientApplication shows AADSTS54005.
// The apps run in this process (the test environment's fetch trusts the test CA); Chromium trusts
// the fake by its pinned key (see __tests__/helpers/browser.ts).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { RedisStore } from 'connect-redis';
import { MemoryStore } from 'express-session';
import { createClient } from 'redis';
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from 'msal-distributed-cache';
import { DEFAULT_USER, findFreePort } from 'msal-distributed-cache/testing';
import type { FakeEntraId } from 'msal-distributed-cache/testing';
import { createApp } from '../../examples/express/app';
import type { ExampleAppOptions, MsalClient } from '../../examples/express/app';
import { launchChromium } from '../helpers/browser';
import { startFakeEntraId } from '../helpers/entra';
import { barrier } from '../helpers/barrier';
import { startExampleProcess } from '../helpers/example-process';
import { startLoopbackServer } from '../helpers/loopback-server';

const SIGNED_IN = `Signed in as ${DEFAULT_USER.name} (${DEFAULT_USER.username}).`;
const SIGNED_OUT = 'You are signed out.';
const SESSION_SECRET = 'test session secret, the same on every instance';

const isCallback = (url: string | URL): boolean => new URL(url).pathname === '/auth/callback';

let entra: FakeEntraId;
let browser: Browser;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  entra = await startFakeEntraId();
  browser = await launchChromium([{ origin: entra.origin, caCertPem: entra.caCertPem }]);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await browser?.close();
  await entra?.close();
});

interface Instance {
  url: string;
  /** What the app logged (failed sign-ins, by reference). */
  logs: string[];
  /** Requests of the callback that reached the app. */
  callbacks: number;
}

/** Serves the example on a loopback port; the redirect URI is this instance's own callback unless given. */
async function serve(options: Pick<ExampleAppOptions, 'msal' | 'sessionStore'> & { redirectUri?: string }): Promise<Instance> {
  const { server, url, close } = await startLoopbackServer();
  cleanups.push(close);
  const instance: Instance = { url, logs: [], callbacks: 0 };
  const app = createApp({
    sessionSecret: SESSION_SECRET,
    authority: entra.authority, // sign-out goes through the fake's logout endpoint
    log: (line) => instance.logs.push(line),
    redirectUri: `${url}/auth/callback`,
    ...options,
  });
  server.on('request', (request, response) => {
    if (isCallback(`${url}${request.url}`)) instance.callbacks++;
    app(request, response);
  });
  return instance;
}

interface Screen {
  url: string;
  text: string;
  html: string;
}

/** One browser profile: a tab, and every page it was shown (what the user saw). */
class Visitor {
  readonly screens: Screen[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  static async open(): Promise<Visitor> {
    const context = await browser.newContext();
    cleanups.push(() => context.close());
    return new Visitor(context, await context.newPage());
  }

  async record(page = this.page): Promise<Screen> {
    const screen = { url: page.url(), text: await page.innerText('body'), html: await page.content() };
    this.screens.push(screen);
    return screen;
  }

  /** What the home page says, loaded in a tab of its own so the tested tab's history stays as it is. */
  async home(appUrl: string): Promise<string> {
    const tab = await this.context.newPage();
    await tab.goto(`${appUrl}/`);
    const text = await tab.locator('#user').innerText();
    await tab.close();
    return text;
  }
}

/** Runs `action` and waits until the tab has committed and loaded a new page (redirects do not commit one). */
async function navigation(page: Page, action: () => Promise<void>): Promise<void> {
  const committed = page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() });
  await action();
  await committed;
  await page.waitForLoadState('load');
}

/** Clicks "Sign in" on the home page and follows the redirects; returns the callback URL that carried the code. */
async function signIn(visitor: Visitor, app: Instance): Promise<string> {
  const { page } = visitor;
  await page.goto(`${app.url}/`);
  const callback = page.waitForRequest((request) => isCallback(request.url()));
  await navigation(page, () => page.getByRole('link', { name: 'Sign in' }).click());
  await visitor.record();
  return (await callback).url();
}

interface Step {
  step: string;
  shown: Screen[];
  /** The home page after the step. */
  home: string;
}

/** Sends the callback again as a browser does; what each step showed, and the home page after it. */
async function repeatCallback(visitor: Visitor, callbackUrl: string, appUrl: string): Promise<Step[]> {
  const { page } = visitor;
  const steps: Step[] = [];
  const step = async (name: string, run: () => Promise<Screen[]>): Promise<void> => {
    const shown = await run();
    steps.push({ step: name, shown, home: await visitor.home(appUrl) });
  };
  await step('the callback URL opened again', async () => {
    await page.goto(callbackUrl);
    const shown = [await visitor.record()];
    // Where the app renders on the callback URL (an error page), reload it there too.
    if (page.url() === callbackUrl) {
      await page.reload();
      shown.push(await visitor.record());
    }
    return shown;
  });
  await step('back', async () => {
    await page.goBack();
    return [await visitor.record()];
  });
  await step('forward', async () => {
    await page.goForward();
    return [await visitor.record()];
  });
  await step('two tabs open the callback URL at once', async () => {
    const tabs = [await visitor.context.newPage(), await visitor.context.newPage()];
    await Promise.all(tabs.map((tab) => tab.goto(callbackUrl)));
    const shown = [await visitor.record(tabs[0]), await visitor.record(tabs[1])];
    await Promise.all(tabs.map((tab) => tab.close()));
    return shown;
  });
  return steps;
}

function codeOf(callbackUrl: string): string {
  return new URL(callbackUrl).searchParams.get('code')!;
}

function authorizationCodeGrants(code: string): number {
  return entra.tokenCallCount({ grantType: 'authorization_code', code });
}

/** No page shows a code, a token or the client secret. */
function expectNothingSecretShown(screens: Screen[], code: string): void {
  const secret = entra.msalConfig().auth.clientSecret;
  for (const { url, html } of screens) {
    expect({ url, leaks: [code, secret, 'fake-rt.', 'eyJ'].filter((value) => html.includes(value)) }).toEqual({ url, leaks: [] });
  }
}

function gated(client: MsalClient, gate: () => Promise<void>): MsalClient {
  const accounts = 'getTokenCache' in client ? client.getTokenCache() : client;
  return {
    getAuthCodeUrl: (request) => client.getAuthCodeUrl(request),
    acquireTokenByCode: async (request) => {
      await gate();
      return client.acquireTokenByCode(request);
    },
    getAccountByHomeId: (homeAccountId) => accounts.getAccountByHomeId(homeAccountId),
    removeAccount: (account) => accounts.removeAccount(account),
  };
}

describe('Express example in headless Chromium, one instance (in-memory sessions and cache)', () => {
  it('DistributedClientApplication: the callback reloaded, back and forward, and in two tabs at once keep the user signed in; the code is redeemed once', async () => {
    const cache = new DistributedTokenCache();
    cleanups.push(() => cache.close());
    const msal = new DistributedClientApplication(entra.msalConfig(), { cache });
    let answeredFromCache = 0;
    msal.on('redeem:answered-from-cache', () => answeredFromCache++);
    const app = await serve({ msal });
    const visitor = await Visitor.open();
    const signInResponse = visitor.page.waitForResponse((response) => new URL(response.url()).pathname === '/signin');

    const callbackUrl = await signIn(visitor, app);
    expect(visitor.page.url()).toBe(`${app.url}/`);
    expect(await visitor.page.locator('#user').innerText()).toBe(SIGNED_IN);
    // The session got a new id when the user signed in (session fixation).
    const sessionAtSignIn = /sid=([^;]+)/.exec((await (await signInResponse).headerValue('set-cookie')) ?? '')?.[1];
    const sessionNow = (await visitor.context.cookies()).find((cookie) => cookie.name === 'sid')?.value;
    expect(sessionAtSignIn).toEqual(expect.any(String));
    expect(sessionNow).toEqual(expect.any(String));
    expect(sessionNow).not.toBe(sessionAtSignIn);

    const steps = await repeatCallback(visitor, callbackUrl, app.url);
    for (const { step, shown, home } of steps) {
      expect({ step, home }).toEqual({ step, home: SIGNED_IN });
      for (const { url, text } of shown)
        expect({ step, url, text }).toEqual({ step, url: `${app.url}/`, text: expect.stringContaining(SIGNED_IN) });
    }
    expect(steps.map(({ step }) => step)).toHaveLength(4);
    expect(visitor.screens.filter(({ html }) => html.includes('AADSTS54005'))).toEqual([]);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(1);
    // Every duplicate reached the app and was answered by the library, not by a shortcut in the app.
    expect(app.callbacks).toBeGreaterThanOrEqual(4); // the sign-in, the URL opened again, two tabs
    expect(answeredFromCache).toBe(app.callbacks - 1);
    expect(app.logs).toEqual([]);
    expectNothingSecretShown(visitor.screens, codeOf(callbackUrl));
  });

  it('plain ConfidentialClientApplication: the same steps show AADSTS54005 (so the test above can fail)', async () => {
    const app = await serve({ msal: new ConfidentialClientApplication(entra.msalConfig()) });
    const visitor = await Visitor.open();

    const callbackUrl = await signIn(visitor, app);
    expect(await visitor.page.locator('#user').innerText()).toBe(SIGNED_IN);
    await repeatCallback(visitor, callbackUrl, app.url);

    const rejected = visitor.screens.filter(({ text }) => text.includes('AADSTS54005'));
    expect(rejected.length).toBeGreaterThan(0);
    for (const { url, text } of rejected) {
      expect(url).toBe(callbackUrl);
      expect(text).toContain('Sign-in failed');
      expect(text).toContain('Sign in again');
    }
    // Every duplicate that reached the app went to the token endpoint again.
    const failedCallbacks = app.logs.filter((line) => line.startsWith('GET /auth/callback failed: AADSTS54005')).length;
    expect(failedCallbacks).toBeGreaterThanOrEqual(rejected.length);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(1 + failedCallbacks);
    expectNothingSecretShown(visitor.screens, codeOf(callbackUrl));
  });

  it('sign-out removes the account from the token cache, ends the session, and a later callback does not sign the user back in', async () => {
    const cache = new DistributedTokenCache();
    cleanups.push(() => cache.close());
    const msal = new DistributedClientApplication(entra.msalConfig(), { cache });
    const sessions = new MemoryStore();
    const app = await serve({ msal, sessionStore: sessions });
    const visitor = await Visitor.open();
    const homeAccountId = entra.homeAccountIdOf(DEFAULT_USER);

    const callbackUrl = await signIn(visitor, app);
    expect(await visitor.page.locator('#user').innerText()).toBe(SIGNED_IN);
    expect(await msal.getAccountByHomeId(homeAccountId)).toMatchObject({ homeAccountId });
    const logoutsBefore = entra.requestCount('logout');

    await navigation(visitor.page, () => visitor.page.getByRole('button', { name: 'Sign out' }).click());
    expect(visitor.page.url()).toBe(`${app.url}/`); // back from the fake's logout endpoint
    expect(await visitor.page.locator('#user').innerText()).toBe(SIGNED_OUT);
    expect(entra.requestCount('logout')).toBe(logoutsBefore + 1);
    expect(await msal.getAccountByHomeId(homeAccountId)).toBeNull();
    expect(await new Promise((resolve, reject) => sessions.length((error, length) => (error ? reject(error) : resolve(length))))).toBe(0);
    expect((await visitor.context.cookies()).filter((cookie) => cookie.name === 'sid')).toEqual([]);

    const response = await visitor.page.goto(callbackUrl);
    const screen = await visitor.record();
    expect(response?.status()).toBe(400);
    expect(screen.text).toContain('state_mismatch');
    expect(await visitor.page.getByRole('link', { name: 'Sign in again' }).getAttribute('href')).toBe('/signin');
    expect(await visitor.home(app.url)).toBe(SIGNED_OUT);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(1);
    expect(await msal.getAccountByHomeId(homeAccountId)).toBeNull();
    expectNothingSecretShown(visitor.screens, codeOf(callbackUrl));
  });
});

/**
 * Signs in on a and, while the browser's callback to a is on its way, a second tab sends the same
 * callback to b, so both are sent at once. Cookies are per host, not per port: b gets the
 * browser's session cookie too, as behind a load balancer. (The two URLs differ by their port,
 * so Chromium does not queue one behind the other, as its HTTP cache does for one URL.)
 */
async function callbackToBothAtOnce(visitor: Visitor, a: Instance, b: Instance): Promise<{ callbackUrl: string; shown: Screen[] }> {
  const { page } = visitor;
  await page.goto(`${a.url}/`);
  const callback = page.waitForRequest((request) => isCallback(request.url()));
  const signedIn = navigation(page, () => page.getByRole('link', { name: 'Sign in' }).click());
  const callbackUrl = (await callback).url();
  const tabB = await visitor.context.newPage();
  await Promise.all([signedIn, tabB.goto(callbackUrl.replace(a.url, b.url))]);
  return { callbackUrl, shown: [await visitor.record(page), await visitor.record(tabB)] };
}

describe('Express example in headless Chromium, two instances sharing Redis (sessions and cache)', () => {
  /** Instances a and b on their own ports, one public redirect URI (a's), as behind a load balancer. */
  async function twoInstances(kind: 'ours' | 'plain'): Promise<{ a: Instance; b: Instance; clients: MsalClient[] }> {
    const url = process.env.REDIS_URL!;
    const prefix = `example-express-test:${randomUUID()}:`;
    const gate = barrier(2);
    const clients: MsalClient[] = [];
    const instance = async (redirectUri?: string): Promise<Instance> => {
      const sessionClient = createClient({ url });
      await sessionClient.connect();
      cleanups.push(() => sessionClient.close());
      let client: MsalClient;
      if (kind === 'ours') {
        const cache = new DistributedTokenCache({
          store: new Keyv({ store: new KeyvRedis(url) }),
          lockStore: new RedisLockStore({ url, keyPrefix: prefix }),
          keyPrefix: prefix,
        });
        cleanups.push(() => cache.close());
        client = new DistributedClientApplication(entra.msalConfig(), { cache });
      } else {
        client = new ConfidentialClientApplication(entra.msalConfig());
      }
      clients.push(client);
      return serve({
        msal: gated(client, gate),
        sessionStore: new RedisStore({ client: sessionClient, prefix: `${prefix}sess:` }),
        ...(redirectUri !== undefined && { redirectUri }),
      });
    };
    const a = await instance();
    const b = await instance(`${a.url}/auth/callback`);
    return { a, b, clients };
  }

  it('DistributedClientApplication: the first callback sent to both instances at once, then repeated on the other one, keeps the user signed in; one redemption; sign-out on one instance removes the account for both', async () => {
    const { a, b, clients } = await twoInstances('ours');
    let answeredFromCache = 0;
    for (const client of clients) (client as DistributedClientApplication).on('redeem:answered-from-cache', () => answeredFromCache++);
    const visitor = await Visitor.open();

    const { callbackUrl, shown } = await callbackToBothAtOnce(visitor, a, b);
    expect(shown.map(({ url, text }) => ({ url, text }))).toEqual([
      { url: `${a.url}/`, text: expect.stringContaining(SIGNED_IN) },
      { url: `${b.url}/`, text: expect.stringContaining(SIGNED_IN) },
    ]);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(1);
    expect([await visitor.home(a.url), await visitor.home(b.url)]).toEqual([SIGNED_IN, SIGNED_IN]);

    const steps = await repeatCallback(visitor, callbackUrl.replace(a.url, b.url), b.url);
    for (const { step, shown: stepShown, home } of steps) {
      expect({ step, home }).toEqual({ step, home: SIGNED_IN });
      for (const { text } of stepShown) expect({ step, text }).toEqual({ step, text: expect.stringContaining(SIGNED_IN) });
    }
    expect(visitor.screens.filter(({ html }) => html.includes('AADSTS54005'))).toEqual([]);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(1);
    expect(a.callbacks + b.callbacks).toBeGreaterThanOrEqual(5); // both at once, the URL opened again, two tabs
    expect(answeredFromCache).toBe(a.callbacks + b.callbacks - 1);
    expect([...a.logs, ...b.logs]).toEqual([]);

    const homeAccountId = entra.homeAccountIdOf(DEFAULT_USER);
    const instanceA = clients[0] as DistributedClientApplication;
    expect(await instanceA.getAccountByHomeId(homeAccountId)).toMatchObject({ homeAccountId });
    await visitor.page.goto(`${b.url}/`);
    await navigation(visitor.page, () => visitor.page.getByRole('button', { name: 'Sign out' }).click());
    expect(await visitor.page.locator('#user').innerText()).toBe(SIGNED_OUT);
    expect([await visitor.home(a.url), await visitor.home(b.url)]).toEqual([SIGNED_OUT, SIGNED_OUT]);
    expect(await instanceA.getAccountByHomeId(homeAccountId)).toBeNull();
    expectNothingSecretShown(visitor.screens, codeOf(callbackUrl));
  });

  it('plain ConfidentialClientApplication: the same callback sent to both instances at once gets AADSTS54005 on one of them', async () => {
    const { a, b } = await twoInstances('plain');
    const visitor = await Visitor.open();

    const { callbackUrl, shown } = await callbackToBothAtOnce(visitor, a, b);
    const texts = shown.map(({ text }) => text);
    expect(texts.filter((text) => text.includes(SIGNED_IN))).toHaveLength(1);
    expect(texts.filter((text) => text.includes('AADSTS54005') && text.includes('Sign in again'))).toHaveLength(1);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(2);
    expectNothingSecretShown(visitor.screens, codeOf(callbackUrl));
  });
});

describe('Express example in headless Chromium, two OS processes (npm run example:express twice, sharing Redis)', () => {
  /** Runs examples/express/main.ts as its own process against the fake Entra ID; resolves once it listens. */
  async function exampleProcess(port: number, baseUrl: string): Promise<Instance> {
    const { auth } = entra.msalConfig();
    const child = await startExampleProcess(join(__dirname, '../../examples/express/main.ts'), [], {
      AZURE_AUTHORITY: entra.authority,
      AZURE_CLIENT_ID: auth.clientId,
      AZURE_CLIENT_SECRET: auth.clientSecret,
      PORT: String(port),
      BASE_URL: baseUrl,
      SESSION_SECRET,
    });
    cleanups.push(() => child.stop());
    return { url: `http://127.0.0.1:${port}`, logs: [], callbacks: 0 };
  }

  it('DistributedClientApplication: the callback sent to both processes at once, then again to the other one, keeps the user signed in; one redemption', async () => {
    const [portA, portB] = [await findFreePort(), await findFreePort()];
    const publicUrl = `http://127.0.0.1:${portA}`; // the redirect URI is a's, as behind a load balancer
    const [a, b] = await Promise.all([exampleProcess(portA, publicUrl), exampleProcess(portB, publicUrl)]);
    // The fake answers token requests slowly, so that the two redemptions overlap (they are also correct if they do not).
    entra.tokenLatencyMs = 300;
    cleanups.push(async () => (entra.tokenLatencyMs = 0));
    const visitor = await Visitor.open();

    const { page } = visitor;
    const { callbackUrl, shown } = await callbackToBothAtOnce(visitor, a, b);
    expect(shown.map(({ url, text }) => ({ url, text }))).toEqual([
      { url: `${a.url}/`, text: expect.stringContaining(SIGNED_IN) },
      { url: `${b.url}/`, text: expect.stringContaining(SIGNED_IN) },
    ]);

    const steps = await repeatCallback(visitor, callbackUrl.replace(a.url, b.url), b.url);
    for (const { step, home } of steps) expect({ step, home }).toEqual({ step, home: SIGNED_IN });
    expect(visitor.screens.filter(({ html }) => html.includes('AADSTS54005'))).toEqual([]);
    expect(authorizationCodeGrants(codeOf(callbackUrl))).toBe(1);
    expect([await visitor.home(a.url), await visitor.home(b.url)]).toEqual([SIGNED_IN, SIGNED_IN]);

    // Sign-out on b signs the browser out of a too (one session store) and removes the account's tokens.
    await page.goto(`${b.url}/`);
    await navigation(page, () => page.getByRole('button', { name: 'Sign out' }).click());
    expect([await visitor.home(a.url), await visitor.home(b.url)]).toEqual([SIGNED_OUT, SIGNED_OUT]);
    expectNothingSecretShown(visitor.screens, codeOf(callbackUrl));
  });
});
