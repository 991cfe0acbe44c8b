// Telemetry with the real OpenTelemetry SDK (in-memory reader and span exporter), against the fake
// Entra ID and the run's redis-server: the figures match what happened (counted from the library's
// own events and the fake's log of token requests), by operation, outcome, token source, cache
// level, grant, result and AADSTS family.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { InteractionRequiredAuthError } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache } from '../../src';
import type { CacheHitEvent, DistributedTokenCacheOptions } from '../../src';
import { addRandomUser, useFakeEntraId } from '../helpers/entra';
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

function appOn(cache: DistributedTokenCache, options: ConstructorParameters<typeof DistributedClientApplication>[1] = {}) {
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
