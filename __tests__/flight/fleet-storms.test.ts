// Fleet single flight across OS processes: 4 app instances, each in its own process, sharing one
// Redis (token store and RedisLockStore), 25 concurrent calls in each for a token the shared cache
// cannot answer. One token request goes out for the whole fleet: a refresh, an app token, an
// on-behalf-of token. The fake Entra ID has strict refresh-token rotation on (a refresh token is
// good once; reuse is refused with invalid_grant AADSTS70043), and the same refresh storm from
// plain MSAL clients on the same cache shows what happens without the flight.
import { randomUUID } from 'node:crypto';
import type { FakeEntraId } from '../../src/testing';
import { startFakeEntraId } from '../helpers/entra';
import { expectOneToken, Fleet, isInvalidGrant, localInstance, signInInRefreshWindow, stormInOneFlight } from '../helpers/fleet';

const PROCESSES = 4;
const CALLS_EACH = 25;
const CALLS = PROCESSES * CALLS_EACH;
const scopes = ['User.Read'];

describe(`fleet single flight: storms of ${PROCESSES} processes x ${CALLS_EACH} concurrent calls sharing one Redis`, () => {
  let entra: FakeEntraId;
  let fleet: Fleet;
  let local: ReturnType<typeof localInstance>;

  beforeAll(async () => {
    entra = await startFakeEntraId({ strictRefreshTokenRotation: true });
    const keyPrefix = `flight-storms-${randomUUID()}:`;
    fleet = await Fleet.start(entra, PROCESSES, keyPrefix);
    local = localInstance(entra, keyPrefix); // signs users in on the same stores (the sign-in is not what is tested here)
  });
  afterAll(async () => {
    await fleet?.stop();
    await local?.cache.close();
    await entra?.close();
  });
  beforeEach(() => fleet.flightStats()); // counters from here on

  const calls = (grantType: 'refresh_token' | 'client_credentials' | 'urn:ietf:params:oauth:grant-type:jwt-bearer'): number =>
    entra.tokenCallCount({ grantType });

  it('the refresh window is real: one silent call for a user signed in with a short-lived access token refreshes it (1 refresh call), and the refreshed token answers the next call from the cache', async () => {
    const { homeAccountId, accessToken } = await signInInRefreshWindow(entra, local.app, scopes);
    const before = calls('refresh_token');
    const refreshed = await fleet.instances[1]!.call('silent', { homeAccountId, scopes });
    expect(refreshed.value).toMatchObject({ fromCache: false, homeAccountId });
    expect((refreshed.value as { accessToken: string }).accessToken).not.toBe(accessToken);
    expect(calls('refresh_token')).toBe(before + 1);
    const again = await fleet.instances[2]!.call('silent', { homeAccountId, scopes });
    expect(again.value).toMatchObject({ fromCache: true, accessToken: (refreshed.value as { accessToken: string }).accessToken });
    expect(calls('refresh_token')).toBe(before + 1);
  });

  it(`refresh storm: ${CALLS} acquireTokenSilent for one user in the refresh window, all processes in the flight at once, strict rotation: 1 refresh call, ${CALLS}/${CALLS} results with the same new access token, no invalid_grant, 1 flight:held in the fleet`, async () => {
    const { homeAccountId, accessToken } = await signInInRefreshWindow(entra, local.app, scopes);
    const before = calls('refresh_token');
    const results = await stormInOneFlight(entra, fleet.instances, 'refresh_token', () =>
      fleet.storm('silent', () => ({ homeAccountId, scopes, correlationId: randomUUID() }), CALLS_EACH),
    );
    expect(calls('refresh_token') - before).toBe(1);
    expect(results.filter(isInvalidGrant)).toEqual([]);
    expect(expectOneToken(results, CALLS)).not.toBe(accessToken);
    expect(new Set(results.map((result) => result.value!.homeAccountId))).toEqual(new Set([homeAccountId]));
    expect(await fleet.flightStats()).toEqual({
      held: 1,
      waitedOk: PROCESSES - 1, // every other process waited for that refresh and took its tokens
      waitedFailed: 0,
      takenOver: 0,
      uncoordinated: 0,
      lockErrorsIgnored: 0,
      lockErrorsThrown: 0,
    });
  });

  it(`the same storm from plain ConfidentialClientApplications on the same cache (its plugin per partition, no flight), strict rotation: more than 1 refresh call, and invalid_grant (AADSTS70043) for some callers`, async () => {
    const { homeAccountId } = await signInInRefreshWindow(entra, local.app, scopes);
    const before = calls('refresh_token');
    const results = await fleet.storm('plainSilent', () => ({ homeAccountId, scopes }), CALLS_EACH);
    expect(calls('refresh_token') - before).toBeGreaterThan(1);
    const refused = results.filter(isInvalidGrant);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    // A reused refresh token is refused with AADSTS70043 and its family revoked: later presentations get AADSTS70000.
    expect(refused.filter(({ reason }) => String(reason!.errorNo) === '70043').length).toBeGreaterThanOrEqual(1);
    expect(refused.length + results.filter((result) => result.status === 'fulfilled').length).toBe(CALLS);
  });

  it(`app-token storm: ${CALLS} acquireTokenByClientCredential for the same scopes, nothing cached: 1 client_credentials call, ${CALLS}/${CALLS} results with the same token`, async () => {
    const appScopes = [`https://storm-${randomUUID()}.example.test/.default`];
    const before = calls('client_credentials');
    const results = await stormInOneFlight(entra, fleet.instances, 'client_credentials', () =>
      fleet.storm('clientCredential', () => ({ scopes: appScopes }), CALLS_EACH),
    );
    expect(calls('client_credentials') - before).toBe(1);
    expectOneToken(results, CALLS);
    expect(await fleet.flightStats()).toMatchObject({ held: 1, waitedOk: PROCESSES - 1, takenOver: 0, uncoordinated: 0 });
  });

  it(`on-behalf-of storm: ${CALLS} acquireTokenOnBehalfOf with one assertion (a user's access token): 1 jwt-bearer call, ${CALLS}/${CALLS} results with the same token for that user`, async () => {
    const { homeAccountId, accessToken: oboAssertion } = await signInInRefreshWindow(entra, local.app, scopes);
    const oboScopes = [`https://downstream-${randomUUID()}.example.test/.default`];
    const before = calls('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const results = await stormInOneFlight(entra, fleet.instances, 'urn:ietf:params:oauth:grant-type:jwt-bearer', () =>
      fleet.storm('onBehalfOf', () => ({ oboAssertion, scopes: oboScopes }), CALLS_EACH),
    );
    expect(calls('urn:ietf:params:oauth:grant-type:jwt-bearer') - before).toBe(1);
    // MSAL gives no account with an on-behalf-of token from its cache (plain MSAL neither): the token says whose it is.
    expect(entra.verifyAccessToken(expectOneToken(results, CALLS))).toMatchObject({ oid: homeAccountId.split('.')[0] });
    expect(await fleet.flightStats()).toMatchObject({ held: 1, waitedOk: PROCESSES - 1, takenOver: 0, uncoordinated: 0 });
  });
});
