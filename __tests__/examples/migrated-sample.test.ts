// examples/migrated-sample in headless Chromium: an app in the shape of msal-node's
// auth-code-distributed-cache sample (before: form_post, the account in the session,
// DistributedCachePlugin, no PKCE) and the same app migrated to this library (after). The fake
// Entra ID posts the code to the callback (response_mode=form_post); the test then makes the
// browser submit that same form again, from the fake's origin as Entra ID's own page does (the
// back button to it, a resubmitted form), to the same instance or to another one (a load balancer).
// Before: AADSTS54005 on an HTTP 500 page, and two identical callbacks at once are two token calls.
// After: no AADSTS54005, one authorization_code grant per sign-in, the user signed in, on one
// instance and across two processes sharing Redis.
import { once } from 'node:events';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import type express from 'express';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { DEFAULT_USER, findFreePort } from 'msal-distributed-cache/testing';
import type { FakeEntraId, TokenRequestRecord } from 'msal-distributed-cache/testing';
import type { DistributedClientApplication } from 'msal-distributed-cache';
import { createApp as createBeforeApp } from '../../examples/migrated-sample/before/app';
import { createApp as createAfterApp, createMsal } from '../../examples/migrated-sample/after/app';
import { CALLBACK_PATH } from '../../examples/migrated-sample/shared';
import { escapeHtml } from '../../examples/shared/sign-in';
import { launchChromium } from '../helpers/browser';
import { startFakeEntraId } from '../helpers/entra';
import { startExampleProcess } from '../helpers/example-process';
import { startLoopbackServer } from '../helpers/loopback-server';

const SIGNED_IN = `Signed in as ${DEFAULT_USER.name} (${DEFAULT_USER.username}).`;
const SESSION_SECRET = 'test session secret, the same on every instance';
const MAIN = join(__dirname, '../../examples/migrated-sample/main.ts');

let entra: FakeEntraId;
let browser: Browser;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  // A tenant of its own: the before app's token keys are bare homeAccountIds, which embed it.
  entra = await startFakeEntraId({ tenantId: randomUUID() });
  browser = await launchChromium([{ origin: entra.origin, caCertPem: entra.caCertPem }]);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await browser?.close();
  await entra?.close();
});

async function redisClient(): Promise<ReturnType<typeof createClient>> {
  const client = createClient({ url: process.env.REDIS_URL! });
  await client.connect();
  cleanups.push(async () => client.isOpen && (await client.close())); // after the migration, cache.close() closes it
  return client;
}

/** Serves the app that `make` builds for its URL, on a loopback port of this process. */
async function serve(make: (url: string) => express.Express): Promise<string> {
  const { server, url, close } = await startLoopbackServer();
  cleanups.push(close);
  server.on('request', make(url));
  return url;
}

/** One browser profile (its own cookies). */
async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  return context;
}

/** The form Entra ID posted to the callback: where, and its fields (code, state, client_info, session_state). */
interface Callback {
  action: string;
  fields: Record<string, string>;
  code: string;
}

/** Where a tab landed after posting the callback: the status of the POST's answer, and the page shown in the end. */
interface Landing {
  status: number;
  url: string;
  text: string;
}

const isCallbackPost = (request: Request): boolean => request.method() === 'POST' && new URL(request.url()).pathname === CALLBACK_PATH;

/** Every landing of the test run, in order. */
const landings: Landing[] = [];

/** Resolves once the tab has posted the callback and shown the page that follows it (after the app's redirect, if any). */
async function landing(page: Page): Promise<Landing> {
  const answered = page.waitForResponse((response) => isCallbackPost(response.request()));
  // Redirects commit no page, and the fake's pages (authorize, the form) are on its origin.
  const committed = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame() && !frame.url().startsWith(entra.origin),
  });
  const [response] = await Promise.all([answered, committed]);
  await page.waitForLoadState('load');
  const landed = { status: response.status(), url: page.url(), text: await page.innerText('body') };
  landings.push(landed);
  return landed;
}

/** Opens `url` (a page that needs a signed-in user): the app sends the tab to the fake, whose form posts the code to the callback. */
function signIn(page: Page, url: string): { posted: Promise<Callback>; landed: Promise<Landing> } {
  const post = page.waitForRequest(isCallbackPost);
  const landed = landing(page);
  const posted = Promise.all([post, page.goto(url, { waitUntil: 'commit' })]).then(([request]) => {
    const fields = Object.fromEntries(new URLSearchParams(request.postData() ?? ''));
    return { action: request.url(), fields, code: fields.code! };
  });
  return { posted, landed };
}

/**
 * Makes the tab submit the callback's form again, from a page on the fake's origin like Entra ID's
 * own (the same cross-site POST, with the browser's cookies), to `origin` when given (another
 * instance, as a load balancer would), else to the same URL.
 */
async function resend(page: Page, callback: Callback, origin?: string): Promise<Landing> {
  const action = origin ? `${origin}${new URL(callback.action).pathname}` : callback.action;
  const inputs = Object.entries(callback.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  const formPage = `${entra.origin}/form-post/${randomUUID()}`;
  await page.route(
    formPage,
    (route) =>
      route.fulfill({
        contentType: 'text/html; charset=utf-8',
        body: `<!doctype html><html><body onload="document.forms[0].submit()"><form method="POST" action="${escapeHtml(action)}">${inputs}</form></body></html>`,
      }),
    { times: 1 },
  );
  const landed = landing(page);
  await page.goto(formPage, { waitUntil: 'commit' });
  return landed;
}

/** Resolves when `count` more authorization-code requests have reached the fake's token endpoint. */
function codeRedemptions(count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const onRequest = (record: TokenRequestRecord): void => {
      if (record.grantType !== 'authorization_code' || ++seen < count) return;
      entra.off('token-request', onRequest);
      resolve();
    };
    entra.on('token-request', onRequest);
  });
}

function grants(code: string): number {
  return entra.tokenCallCount({ grantType: 'authorization_code', code });
}

/** Holds the fake's token answers until the returned function is called (also at the end of the test). */
function holdTokenAnswers(): () => void {
  const release = entra.holdTokenResponses();
  cleanups.push(async () => release());
  return release;
}

/** Counts the redeem events of an in-process instance. */
function redeemEvents(msal: DistributedClientApplication): {
  joined: number;
  waited: number;
  answeredFromCache: number;
  refused: string[];
} {
  const events = { joined: 0, waited: 0, answeredFromCache: 0, refused: [] as string[] };
  msal.on('redeem:joined', () => events.joined++);
  msal.on('redeem:waited', () => events.waited++);
  msal.on('redeem:answered-from-cache', () => events.answeredFromCache++);
  msal.on('redeem:refused', ({ reason }) => events.refused.push(reason));
  return events;
}

/** An instance of the migrated app in this process (its events observable), with its redirect URI on `publicUrl` when given. */
async function afterInstance(publicUrl?: string): Promise<{ url: string; msal: DistributedClientApplication; logs: string[] }> {
  const redis = await redisClient();
  const msal = createMsal(entra.msalConfig(), redis);
  cleanups.push(() => msal.cache.close());
  cleanups.push(() => msal.close());
  await msal.warmUp();
  const logs: string[] = [];
  const url = await serve((own) =>
    createAfterApp({
      msal,
      redis,
      redirectUri: `${publicUrl ?? own}${CALLBACK_PATH}`,
      sessionSecret: SESSION_SECRET,
      log: (line) => logs.push(line),
    }),
  );
  return { url, msal, logs };
}

const signedInAt = (url: string): Landing => ({ status: 302, url: `${url}/`, text: expect.stringContaining(SIGNED_IN) });

describe('before the migration: msal-node DistributedCachePlugin, form_post, the account in the session, no PKCE', () => {
  it('a re-sent callback shows AADSTS54005 on an HTTP 500 page; two identical callbacks at once make 2 token calls', async () => {
    const redis = await redisClient();
    const url = await serve((own) =>
      createBeforeApp({ msalConfig: entra.msalConfig(), redis, redirectUri: `${own}${CALLBACK_PATH}`, sessionSecret: SESSION_SECRET }),
    );

    // Signs in, then the same form is submitted again.
    const page = await (await newContext()).newPage();
    const first = signIn(page, `${url}/`);
    const callback = await first.posted;
    expect(await first.landed).toEqual(signedInAt(url));
    await page.goto(`${url}/profile`);
    expect(await page.innerText('#token')).toContain('from the token cache'); // the sample's partitioned cache works
    const again = await resend(page, callback);
    expect(again).toEqual({ status: 500, url: callback.action, text: expect.stringContaining('AADSTS54005') });
    expect(grants(callback.code)).toBe(2);

    // Two identical callbacks at once: the first sign-in's token request waits at the fake until
    // the duplicate's has arrived too.
    const context = await newContext();
    const [tab1, tab2] = [await context.newPage(), await context.newPage()];
    const release = holdTokenAnswers();
    const bothSent = codeRedemptions(2);
    const signingIn = signIn(tab1, `${url}/`);
    const atOnce = await signingIn.posted;
    const duplicate = resend(tab2, atOnce);
    await bothSent;
    release();
    const both = await Promise.all([signingIn.landed, duplicate]);
    expect(grants(atOnce.code)).toBe(2);
    expect(both.filter(({ text }) => text.includes(SIGNED_IN))).toHaveLength(1);
    expect(both.filter(({ status, text }) => status === 500 && text.includes('AADSTS54005'))).toHaveLength(1);
  });
});

describe('after the migration: DistributedClientApplication, PKCE, homeAccountId in the session, form_post kept', () => {
  let landingsBefore = 0;
  beforeEach(() => (landingsBefore = landings.length));
  afterEach(() => {
    // Every callback this test posted: none showed AADSTS54005 (nor any other error but the one the test expects).
    const shown = landings.slice(landingsBefore);
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.filter(({ text }) => text.includes('AADSTS54005'))).toEqual([]);
    expect(shown.filter(({ status }) => status !== 302)).toEqual(shown.filter(({ text }) => text.includes('ERR_CODE_ALREADY_REDEEMED')));
  });

  it('one instance: two identical callbacks at once and a re-sent callback keep the user signed in, with 1 grant per sign-in; an earlier sign-in’s callback goes home; another browser gets a sign-in-again page', async () => {
    const a = await afterInstance();
    const events = redeemEvents(a.msal);
    const context = await newContext();
    const [tab1, tab2] = [await context.newPage(), await context.newPage()];

    // Two identical callbacks at once: the first is redeeming (its answer held at the fake) when the duplicate joins it.
    const release = holdTokenAnswers();
    const joined = once(a.msal, 'redeem:joined');
    const secondRedemption = codeRedemptions(2);
    const signingIn = signIn(tab1, `${a.url}/`);
    const callback = await signingIn.posted;
    const duplicate = resend(tab2, callback);
    // A duplicate that does not join is answered at once, or sends the code again: the test fails below.
    await Promise.race([joined, duplicate, secondRedemption]);
    release();
    expect(await Promise.all([signingIn.landed, duplicate])).toEqual([signedInAt(a.url), signedInAt(a.url)]);
    expect(grants(callback.code)).toBe(1);

    // The same form submitted again: answered with the first redemption's tokens.
    expect(await resend(tab1, callback)).toEqual(signedInAt(a.url));
    expect(events).toMatchObject({ joined: 1, answeredFromCache: 1, refused: [] });
    await tab1.goto(`${a.url}/profile`);
    expect(await tab1.innerText('#token')).toContain('from the token cache');
    expect(grants(callback.code)).toBe(1);

    // The user signs in again; then the first sign-in's form comes back (the back button): its
    // proof is not this session's any more (ERR_CODE_ALREADY_REDEEMED), and the user is signed in.
    const again = signIn(tab1, `${a.url}/signin`);
    const secondCallback = await again.posted;
    expect(await again.landed).toEqual(signedInAt(a.url));
    expect(await resend(tab1, callback)).toEqual(signedInAt(a.url));
    expect(events.refused).toEqual(['binding-mismatch']);
    expect([grants(callback.code), grants(secondCallback.code)]).toEqual([1, 1]);

    // Another browser, with a sign-in of its own in progress, sends the second code: no tokens, a typed error page.
    const other = await newContext();
    const otherTab = await other.newPage();
    await otherTab.route(
      (url) => url.href.startsWith(`${entra.authority}/oauth2/v2.0/authorize`),
      (route) => route.fulfill({ body: 'stopped' }),
      {
        times: 1,
      },
    );
    await otherTab.goto(`${a.url}/signin`); // its sign-in stops at Entra ID's page
    const refused = await resend(otherTab, secondCallback);
    expect(refused).toEqual({ status: 400, url: secondCallback.action, text: expect.stringContaining('ERR_CODE_ALREADY_REDEEMED') });
    expect(await otherTab.getByRole('link', { name: 'Sign in again' }).getAttribute('href')).toBe('/signin');
    expect((await other.request.get(`${a.url}/`, { maxRedirects: 0 })).status()).toBe(302); // still signed out: off to Entra ID
    expect(grants(secondCallback.code)).toBe(1);
    expect(a.logs).toEqual([`POST ${CALLBACK_PATH} failed: ERR_CODE_ALREADY_REDEEMED`]);
  });

  it('two instances in two processes sharing Redis: the callback posted to one and, at once, to the other keeps the user signed in on both, with 1 grant; so do re-sent callbacks', async () => {
    // b: `main.ts after` in a child process, whose URL is the public one (the redirect URI); a: in this process.
    const port = await findFreePort();
    const bUrl = `http://127.0.0.1:${port}`;
    const { auth } = entra.msalConfig();
    const b = await startExampleProcess(MAIN, ['after'], {
      AZURE_AUTHORITY: entra.authority,
      AZURE_CLIENT_ID: auth.clientId,
      AZURE_CLIENT_SECRET: auth.clientSecret,
      PORT: String(port),
      BASE_URL: bUrl,
      SESSION_SECRET,
    });
    cleanups.push(() => b.stop());
    const a = await afterInstance(bUrl);
    const events = redeemEvents(a.msal);
    const context = await newContext();
    const [tab1, tab2] = [await context.newPage(), await context.newPage()];

    // The sign-in starts on a; Entra ID's form posts to b, whose redemption is held at the fake
    // while the same form is posted to a, which waits for b's redemption.
    const release = holdTokenAnswers();
    const bRedeeming = codeRedemptions(1);
    const signingIn = signIn(tab1, `${a.url}/`);
    const callback = await signingIn.posted;
    expect(callback.action).toBe(`${bUrl}${CALLBACK_PATH}`);
    await bRedeeming;
    const waited = once(a.msal, 'redeem:waited');
    const secondRedemption = codeRedemptions(1);
    const toA = resend(tab2, callback, a.url);
    // A duplicate that does not wait is answered at once, or sends the code again: the test fails below.
    await Promise.race([waited, toA, secondRedemption]);
    release();
    expect(await Promise.all([signingIn.landed, toA])).toEqual([signedInAt(bUrl), signedInAt(a.url)]);
    expect(grants(callback.code)).toBe(1);

    // Sent again, to each instance.
    expect(await resend(tab1, callback, a.url)).toEqual(signedInAt(a.url));
    expect(await resend(tab1, callback, bUrl)).toEqual(signedInAt(bUrl));
    expect(grants(callback.code)).toBe(1);
    expect(events).toMatchObject({ waited: 1, answeredFromCache: 2, refused: [] });
    expect(a.logs).toEqual([]);

    // Both instances serve the tokens b wrote, from the shared cache.
    for (const url of [a.url, bUrl]) {
      await tab1.goto(`${url}/profile`);
      expect(await tab1.innerText('#token')).toContain('from the token cache');
    }
  });
});
