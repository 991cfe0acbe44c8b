// Telemetry with the real OpenTelemetry SDK (in-memory reader and span exporter), against the fake
// Entra ID and the run's redis-server: the figures match what happened (counted from the library's
// own events and the fake's log of token requests), by operation, outcome, token source, cache
// level, grant, result and AADSTS family.
import { trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { ConfidentialClientApplication, CryptoProvider, InteractionRequiredAuthError } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, InvalidArgumentError, MemoryLockStore } from '../../src';
import type { CacheHitEvent, DistributedClientApplicationOptions, DistributedTokenCacheOptions, StoreErrorEvent } from '../../src';
import { RedisServer } from '../../src/testing';
import { internalsOf } from '../../src/cache/cache-internals';
import { addRandomUser, useFakeEntraId } from '../helpers/entra';
import { flightPair } from '../helpers/flight-pair';
import { rejectionOf } from '../helpers/assertions';
import { OtelHarness, total } from '../helpers/otel';
import { redisUrl } from '../helpers/stores';
import { LIBRARY_VERSION } from '../../src/telemetry/names';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const appScopes = ['https://graph.example.test/.default'];

const { entra, cleanups } = useFakeEntraId();
let otel: OtelHarness;

beforeEach(() => {
  otel = new OtelHarness();
  cleanups.push(() => otel.close());
});

/** A cache on the run's Redis (@keyv/redis with its default options, so L1 on), under a key prefix of its own. */
function redisCache(options: DistributedTokenCacheOptions = {}): DistributedTokenCache {
  const cache = new DistributedTokenCache({
    store: new Keyv({ store: new KeyvRedis(redisUrl()) }),
    keyPrefix: `telemetry-${randomUUID()}:`,
    ...options,
  });
  cleanups.push(() => cache.close());
  return cache;
}

function appOn(cache: DistributedTokenCache, options: DistributedClientApplicationOptions = {}): DistributedClientApplication {
  const app = new DistributedClientApplication(entra().msalConfig(), { ...options, cache });
  cleanups.push(() => app.close());
  return app;
}

/** Where each read was answered, as the cache's events say. */
function lookupsOf(cache: DistributedTokenCache): Record<'l1' | 'store' | 'miss', number> {
  const seen = { l1: 0, store: 0, miss: 0 };
  cache.on('cache:hit', ({ level }: CacheHitEvent) => void seen[level]++);
  cache.on('cache:miss', () => void seen.miss++);
  return seen;
}

describe('metrics, with providers passed in the option', () => {
  it('counts operations by outcome and token source, cache lookups by level (L1, store, miss), and token requests by grant', async () => {
    const cache = redisCache({ telemetry: otel.telemetry });
    const seen = lookupsOf(cache);
    const app = appOn(cache);
    const signIn = await app.acquireTokenByCode({ code: entra().mintCode({ redirectUri }), redirectUri, scopes });
    const homeAccountId = signIn.account!.homeAccountId;
    // Until tracking is on, L1 answers nothing: silent calls until one is answered from L1.
    let silent = 0;
    while (seen.l1 === 0 && silent < 200) {
      expect((await app.acquireTokenSilent({ homeAccountId, scopes })).fromCache).toBe(true);
      silent++;
    }
    expect(seen.l1).toBeGreaterThan(0);
    const unknown = addRandomUser(entra());
    const noAccount = await rejectionOf(app.acquireTokenSilent({ homeAccountId: entra().homeAccountIdOf(unknown), scopes }));
    expect(noAccount).toBeInstanceOf(InteractionRequiredAuthError);
    await app.acquireTokenByClientCredential({ scopes: appScopes });
    await app.acquireTokenByClientCredential({ scopes: appScopes });

    const operations = await otel.points('msal_dc.operation.duration');
    const byOperation = (operation: string, more: Record<string, string> = {}) =>
      total(operations, { 'msal_dc.operation': operation, ...more });
    expect(byOperation('acquire_token_by_code', { 'msal_dc.outcome': 'success', 'msal_dc.token_source': 'identity_provider' })).toBe(1);
    expect(byOperation('acquire_token_silent', { 'msal_dc.outcome': 'success', 'msal_dc.token_source': 'cache' })).toBe(silent);
    expect(byOperation('acquire_token_silent', { 'msal_dc.outcome': 'failure', 'error.type': 'no_account_in_cache' })).toBe(1);
    expect(byOperation('acquire_token_by_client_credential', { 'msal_dc.token_source': 'identity_provider' })).toBe(1);
    expect(byOperation('acquire_token_by_client_credential', { 'msal_dc.token_source': 'cache' })).toBe(1);
    expect(total(operations)).toBe(silent + 4);
    expect(operations.every((point) => point.sum! > 0)).toBe(true);

    const lookups = await otel.points('msal_dc.cache.lookups');
    expect({
      l1: total(lookups, { 'msal_dc.cache.level': 'l1' }),
      store: total(lookups, { 'msal_dc.cache.level': 'store' }),
      miss: total(lookups, { 'msal_dc.cache.level': 'miss' }),
    }).toEqual(seen);
    expect(seen.store).toBeGreaterThan(0);
    expect(seen.miss).toBeGreaterThan(0);
    const reads = await otel.points('msal_dc.cache.duration');
    expect(total(reads, { 'msal_dc.cache.operation': 'read', 'msal_dc.cache.level': 'l1' })).toBe(seen.l1);
    expect(total(reads, { 'msal_dc.cache.operation': 'read' })).toBe(seen.l1 + seen.store + seen.miss);
    expect(total(reads, { 'msal_dc.cache.operation': 'write' })).toBe(2); // the sign-in's and the app token's

    const requests = await otel.points('msal_dc.token_requests');
    expect(requests.map((point) => [point.attributes, point.value])).toEqual(
      expect.arrayContaining([
        [{ 'msal_dc.grant_type': 'authorization_code', 'msal_dc.result': 'success', 'http.response.status_code': 200 }, 1],
        [{ 'msal_dc.grant_type': 'client_credentials', 'msal_dc.result': 'success', 'http.response.status_code': 200 }, 1],
      ]),
    );
    expect(total(requests)).toBe(entra().tokenRequests.length);
    expect(total(await otel.points('msal_dc.token_request.duration'), { 'msal_dc.result': 'success' })).toBe(2);
    expect(total(await otel.points('msal_dc.redemptions'), { 'msal_dc.redemption.outcome': 'redeemed' })).toBe(1);
    expect(total(await otel.points('msal_dc.flights'), { 'msal_dc.grant_type': 'client_credentials', 'msal_dc.flight.role': 'held' })).toBe(
      1,
    );

    // The L1's figures, observed at collection.
    expect(total(await otel.points('msal_dc.l1.entries'))).toBeGreaterThan(0);
    expect(total(await otel.points('msal_dc.l1.size'))).toBeGreaterThan(0);
    expect(await otel.points('msal_dc.l1.evictions')).toEqual([expect.objectContaining({ value: 0 })]);
    const scope = (await otel.collect()).scopeMetrics.map((each) => each.scope);
    expect(scope).toEqual([{ name: 'msal-distributed-cache', version: LIBRARY_VERSION, schemaUrl: undefined }]);
  });
});

describe('the L1 figures', () => {
  it('are the sum of the L1s of the caches recording with one provider, and a closed cache leaves them', async () => {
    const caches = [redisCache({ telemetry: otel.telemetry }), redisCache({ telemetry: otel.telemetry })];
    for (const cache of caches) {
      const seen = lookupsOf(cache);
      const app = appOn(cache);
      const signIn = await app.acquireTokenByCode({ code: entra().mintCode({ redirectUri }), redirectUri, scopes });
      for (let call = 0; call < 200 && seen.l1 === 0; call++)
        await app.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes });
      expect(seen.l1).toBeGreaterThan(0);
    }
    const stats = caches.map((cache) => internalsOf(cache).l1!.stats);
    expect(stats.map((each) => each.entries)).toEqual([1, 1]);
    expect(total(await otel.points('msal_dc.l1.entries'))).toBe(2);
    expect(total(await otel.points('msal_dc.l1.size'))).toBe(stats[0]!.bytes + stats[1]!.bytes);
    await caches[0]!.close();
    expect(total(await otel.points('msal_dc.l1.entries'))).toBe(1);
    expect(total(await otel.points('msal_dc.l1.size'))).toBe(internalsOf(caches[1]!).l1!.stats.bytes);
  });
});

describe('metrics of failures', () => {
  it('counts a refused grant by OAuth error and AADSTS family, and the operation that failed with it', async () => {
    const app = appOn(redisCache({ telemetry: otel.telemetry }));
    const refused = await rejectionOf(app.acquireTokenByRefreshToken({ refreshToken: `not-a-refresh-token-${randomUUID()}`, scopes }));
    expect(refused).toMatchObject({ errorCode: 'invalid_grant' });
    expect((await otel.points('msal_dc.token_requests')).map((point) => [point.attributes, point.value])).toEqual([
      [
        {
          'msal_dc.grant_type': 'refresh_token',
          'msal_dc.result': 'error',
          'http.response.status_code': 400,
          'error.type': 'invalid_grant',
          'msal_dc.aadsts.family': 'AADSTS70xxx',
          'msal_dc.aadsts.code': 70000,
        },
        1,
      ],
    ]);
    const operations = await otel.points('msal_dc.operation.duration');
    expect(operations.map((point) => point.attributes)).toEqual([
      { 'msal_dc.operation': 'acquire_token_by_refresh_token', 'msal_dc.outcome': 'failure', 'error.type': 'invalid_grant' },
    ]);
  });

  it('counts redemptions by outcome: redeemed, joined, answered, refused with its reason (AADSTS54005 for a code redeemed elsewhere)', async () => {
    const app = appOn(redisCache({ telemetry: otel.telemetry }));
    const pkce = await new CryptoProvider().generatePkceCodes();
    const code = entra().mintCode({ redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
    const request = { code, redirectUri, scopes, codeVerifier: pkce.verifier };
    // Two at once in this process: one redeems, the other joins; then a late duplicate is answered,
    // and one with another verifier is refused.
    await Promise.all([app.acquireTokenByCode(request), app.acquireTokenByCode(request)]);
    await app.acquireTokenByCode(request);
    expect((await rejectionOf(app.acquireTokenByCode({ ...request, codeVerifier: randomUUID() }))).code).toBe('ERR_CODE_ALREADY_REDEEMED');
    // A code that another client (plain MSAL) redeemed first: Entra ID says AADSTS54005.
    const elsewhere = entra().mintCode({ redirectUri });
    await new ConfidentialClientApplication(entra().msalConfig()).acquireTokenByCode({ code: elsewhere, redirectUri, scopes });
    expect((await rejectionOf(app.acquireTokenByCode({ code: elsewhere, redirectUri, scopes }))).code).toBe('ERR_CODE_ALREADY_REDEEMED');

    const redemptions = await otel.points('msal_dc.redemptions');
    const byOutcome = Object.fromEntries(
      redemptions.map((point) => [
        [point.attributes['msal_dc.redemption.outcome'], point.attributes['msal_dc.refusal.reason']].filter(Boolean).join(':'),
        point.value,
      ]),
    );
    expect(byOutcome).toEqual({ redeemed: 1, joined: 1, answered: 1, 'refused:binding-mismatch': 1, 'refused:already-redeemed': 1 });
    const requests = await otel.points('msal_dc.token_requests');
    expect(total(requests, { 'msal_dc.aadsts.family': 'AADSTS54xxx', 'msal_dc.aadsts.code': 54005, 'error.type': 'invalid_grant' })).toBe(
      1,
    );
    expect(total(requests, { 'msal_dc.grant_type': 'authorization_code', 'msal_dc.result': 'success' })).toBe(1);
    const operations = await otel.points('msal_dc.operation.duration');
    expect(total(operations, { 'msal_dc.operation': 'acquire_token_by_code', 'msal_dc.outcome': 'success' })).toBe(3);
    expect(total(operations, { 'msal_dc.operation': 'acquire_token_by_code', 'error.type': 'ERR_CODE_ALREADY_REDEEMED' })).toBe(2);
  });

  it('counts token requests that got an error status or no answer', async () => {
    const app = appOn(redisCache({ telemetry: otel.telemetry }));
    entra().injectFailure('http503', { grantType: 'client_credentials', count: 10 });
    await rejectionOf(app.acquireTokenByClientCredential({ scopes: appScopes }));
    entra().injectFailure('drop', { grantType: 'refresh_token', count: 10 });
    await rejectionOf(app.acquireTokenByRefreshToken({ refreshToken: `dropped-${randomUUID()}`, scopes }));
    const requests = await otel.points('msal_dc.token_requests');
    const answered = entra().tokenRequests.filter((record) => record.outcome === 503).length;
    const dropped = entra().tokenRequests.filter((record) => record.outcome === 'dropped').length;
    expect(answered).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
    expect(total(requests, { 'msal_dc.result': 'error', 'http.response.status_code': 503, 'error.type': 'temporarily_unavailable' })).toBe(
      answered,
    );
    expect(total(requests, { 'msal_dc.result': 'no_response' })).toBe(dropped);
    expect(total(requests)).toBe(answered + dropped);
  });

  it('counts store errors by operation, code and policy outcome, from a paused Redis', async () => {
    const server = await RedisServer.start();
    cleanups.push(
      () => server.stop(),
      () => server.resume(), // a paused server answers again, so the cache can close
    );
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvRedis(server.url) }),
      storeTimeoutMs: 300,
      l1: false,
      telemetry: otel.telemetry,
    });
    cleanups.push(() => cache.close());
    const storeErrors: StoreErrorEvent[] = [];
    cache.on('store:error', (event) => storeErrors.push(event));
    const app = appOn(cache);
    const signIn = await app.acquireTokenByCode({ code: entra().mintCode({ redirectUri }), redirectUri, scopes });
    server.pause();
    const error = await rejectionOf(app.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes }));
    expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(storeErrors.map(({ operation, code, outcome }) => ({ operation, code, outcome }))).toEqual([
      { operation: 'read', code: 'ERR_STORE_UNAVAILABLE', outcome: 'thrown' },
    ]);
    expect((await otel.points('msal_dc.store.errors')).map((point) => [point.attributes, point.value])).toEqual([
      [{ 'msal_dc.store.operation': 'read', 'error.type': 'ERR_STORE_UNAVAILABLE', 'msal_dc.store.policy_outcome': 'thrown' }, 1],
    ]);
    const operations = await otel.points('msal_dc.operation.duration');
    expect(total(operations, { 'msal_dc.operation': 'acquire_token_silent', 'error.type': 'ERR_STORE_UNAVAILABLE' })).toBe(1);
    expect(total(await otel.points('msal_dc.cache.duration'), { 'msal_dc.cache.operation': 'read' })).toBe(1);
  });

  it('counts lock waits and the operations that timed out waiting (ERR_LOCK_TIMEOUT)', async () => {
    const store = new Keyv();
    const lockStore = new MemoryLockStore();
    const [first, second] = [0, 1].map(() => {
      const cache = new DistributedTokenCache({ store, lockStore, telemetry: otel.telemetry });
      cleanups.push(() => cache.close());
      return appOn(cache, { redeem: { waitTimeoutMs: 50 } });
    });
    const pkce = await new CryptoProvider().generatePkceCodes();
    const code = entra().mintCode({ redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
    const request = { code, redirectUri, scopes, codeVerifier: pkce.verifier };
    const release = entra().holdTokenResponses();
    const arrived = once(entra(), 'token-request');
    const redeeming = first!.acquireTokenByCode(request);
    await arrived; // the code is at the token endpoint, its answer held: the duplicate waits for it, then gives up
    const timedOut = await rejectionOf(second!.acquireTokenByCode(request));
    release();
    await redeeming;
    expect(timedOut.code).toBe('ERR_LOCK_TIMEOUT');
    expect((await otel.points('msal_dc.lock.timeouts')).map((point) => [point.attributes, point.value])).toEqual([
      [{ 'msal_dc.operation': 'acquire_token_by_code' }, 1],
    ]);
    const waits = await otel.points('msal_dc.lock.wait.duration');
    expect(waits.map((point) => point.attributes)).toEqual([{ 'msal_dc.lock.purpose': 'redemption' }]);
    expect(waits[0]!.value).toBeGreaterThan(0);
    const operations = await otel.points('msal_dc.operation.duration');
    expect(total(operations, { 'msal_dc.operation': 'acquire_token_by_code', 'error.type': 'ERR_LOCK_TIMEOUT' })).toBe(1);
    expect(total(await otel.points('msal_dc.redemptions'), { 'msal_dc.redemption.outcome': 'waited' })).toBe(1);
  });
});

describe('flights', () => {
  it('count the holder and the waiter by grant and outcome, and the wait', async () => {
    const pair = flightPair(entra(), { telemetry: otel.telemetry }, cleanups);
    const settled = await pair.inOneFlight((app) => app.acquireTokenByClientCredential({ scopes: appScopes }));
    expect(settled.map((each) => each.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(entra().tokenCallCount({ grantType: 'client_credentials' })).toBe(1);
    const flights = await otel.points('msal_dc.flights');
    expect(flights.map((point) => [point.attributes, point.value])).toEqual(
      expect.arrayContaining([
        [{ 'msal_dc.grant_type': 'client_credentials', 'msal_dc.flight.role': 'held' }, 1],
        [{ 'msal_dc.grant_type': 'client_credentials', 'msal_dc.flight.role': 'waited', 'msal_dc.flight.outcome': 'ok' }, 1],
      ]),
    );
    expect(flights).toHaveLength(2);
    const waits = await otel.points('msal_dc.flight.wait.duration');
    expect(waits.map((point) => [point.attributes, point.value])).toEqual([
      [{ 'msal_dc.grant_type': 'client_credentials', 'msal_dc.flight.outcome': 'ok' }, 1],
    ]);
    expect(total(await otel.points('msal_dc.lock.wait.duration'), { 'msal_dc.lock.purpose': 'flight' })).toBeGreaterThan(0);
  });

  it('count a failed flight as waited with outcome failed, on the waiter', async () => {
    const pair = flightPair(entra(), { telemetry: otel.telemetry }, cleanups);
    entra().injectFailure('http503', { grantType: 'client_credentials', count: 10 });
    const settled = await pair.inOneFlight((app) => app.acquireTokenByClientCredential({ scopes: appScopes }));
    expect(settled.map((each) => each.status)).toEqual(['rejected', 'rejected']);
    const flights = await otel.points('msal_dc.flights');
    expect(total(flights, { 'msal_dc.flight.role': 'held' })).toBe(1);
    expect(total(flights, { 'msal_dc.flight.role': 'waited', 'msal_dc.flight.outcome': 'failed' })).toBe(1);
  });
});

describe('where telemetry goes', () => {
  it('to the global providers when the option is not set', async () => {
    otel.registerGlobally();
    const app = appOn(redisCache());
    await app.acquireTokenByClientCredential({ scopes: appScopes });
    expect(total(await otel.points('msal_dc.operation.duration'), { 'msal_dc.operation': 'acquire_token_by_client_credential' })).toBe(1);
    expect(otel.spans().map((span) => span.name)).toContain('msal_dc acquire_token_by_client_credential');
  });

  it('with no SDK registered, nothing is recorded; a tracer provider registered later is used from then on', async () => {
    const app = appOn(redisCache()); // the API is installed; nothing is registered yet
    await app.acquireTokenByClientCredential({ scopes: appScopes });
    expect(otel.spans()).toEqual([]);

    trace.setGlobalTracerProvider(otel.tracerProvider);
    await app.acquireTokenByClientCredential({ scopes: appScopes });
    expect(otel.spans().map((span) => span.name)).toContain('msal_dc acquire_token_by_client_credential');
  });

  it('nowhere with telemetry: false, on the cache (and so its application) or on the application alone', async () => {
    otel.registerGlobally();
    const off = appOn(redisCache({ telemetry: false }));
    const signIn = await off.acquireTokenByCode({ code: entra().mintCode({ redirectUri }), redirectUri, scopes });
    await off.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes, forceRefresh: true });
    await off.acquireTokenByClientCredential({ scopes: appScopes });
    expect(otel.spans()).toEqual([]);
    expect((await otel.collect()).scopeMetrics.flatMap((scope) => scope.metrics)).toEqual([]);

    // The application's own `false` over a cache that records: only the cache's reads and writes are.
    const appOff = appOn(redisCache(), { telemetry: false });
    await appOff.acquireTokenByClientCredential({ scopes: ['https://other.example.test/.default'] });
    const names = (await otel.collect()).scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => metric.descriptor.name));
    expect(names.sort()).toEqual([
      'msal_dc.cache.duration',
      'msal_dc.cache.lookups',
      'msal_dc.l1.entries',
      'msal_dc.l1.evictions',
      'msal_dc.l1.size',
    ]);
    expect([...new Set(otel.spans().map((span) => span.name))].sort()).toEqual(['msal_dc cache.read', 'msal_dc cache.write']);
  });

  it('refuses a malformed option, naming it', () => {
    const bad = (telemetry: unknown): unknown => {
      try {
        new DistributedTokenCache({ telemetry: telemetry as false });
      } catch (error) {
        return error instanceof InvalidArgumentError ? [error.code, error.message] : error;
      }
      return 'accepted';
    };
    expect(bad(true)).toEqual(['ERR_INVALID_ARG_TYPE', expect.stringContaining('"options.telemetry" must be false or an object')]);
    expect(bad({ meterprovider: {} })).toEqual(['ERR_INVALID_ARG_VALUE', expect.stringContaining('unknown option "meterprovider"')]);
    expect(bad({ meterProvider: {} })).toEqual(['ERR_INVALID_ARG_TYPE', expect.stringContaining('"options.telemetry.meterProvider"')]);
    expect(bad({ tracerProvider: otel.meterProvider })).toEqual(['ERR_INVALID_ARG_TYPE', expect.stringContaining('with getTracer()')]);
    expect(() => new DistributedClientApplication(entra().msalConfig(), { telemetry: 1 as unknown as false })).toThrow(
      InvalidArgumentError,
    );
  });

  it("names its meter and tracer after the package, with the package's version", () => {
    const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { name: string; version: string };
    expect(LIBRARY_VERSION).toBe(manifest.version);
  });
});
