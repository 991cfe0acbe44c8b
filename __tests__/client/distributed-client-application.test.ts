// DistributedClientApplication: MSAL's methods, one partition-bound MSAL client per operation.
import { randomUUID } from 'node:crypto';
import { ConfidentialClientApplication, CryptoProvider, InteractionRequiredAuthError } from '@azure/msal-node';
import type { AuthError, RefreshTokenRequest } from '@azure/msal-node';
import { ClosedError, DistributedClientApplication, DistributedTokenCache, InvalidArgumentError } from '../../src';
import { rejectionOf } from '../helpers/assertions';
import { startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('DistributedClientApplication', () => {
  let entra: FakeEntraId;
  let app: DistributedClientApplication;
  beforeEach(async () => {
    entra = await startFakeEntraId();
    app = new DistributedClientApplication(entra.msalConfig(), { cache: new DistributedTokenCache() });
  });
  afterEach(async () => {
    await app.cache.close();
    await entra.close();
  });

  it('discovers the authority once: no discovery request per operation', async () => {
    const pkce = await new CryptoProvider().generatePkceCodes();
    const url = await app.getAuthCodeUrl({ redirectUri, scopes, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
    const { code } = await entra.authorize(url);
    const signIn = await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: pkce.verifier });
    for (let round = 0; round < 5; round++) {
      await app.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes, forceRefresh: true });
      await app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
      await app.acquireTokenOnBehalfOf({ oboAssertion: signIn.accessToken, scopes: ['https://graph.example.test/User.Read'] });
      await app.getAccountByHomeId(signIn.account!.homeAccountId);
    }
    expect(entra.requestCount('openid-configuration')).toBe(1);
    expect(entra.requestCount('instance-discovery')).toBe(0);
  });

  it('acquireTokenSilent by homeAccountId or by account gives the same cached token', async () => {
    const signIn = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
    const byId = await app.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes });
    const byAccount = await app.acquireTokenSilent({ account: signIn.account!, scopes });
    expect([byId.accessToken, byAccount.accessToken]).toEqual([signIn.accessToken, signIn.accessToken]);
  });

  it('silent calls by homeAccountId, repeated (the account is remembered without its ID token), return the account and its ID token claims; a removed account is not answered', async () => {
    const signIn = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
    const homeAccountId = signIn.account!.homeAccountId;
    for (let call = 0; call < 3; call++) {
      const result = await app.acquireTokenSilent({ homeAccountId, scopes, forceRefresh: call === 2 });
      expect(result.account).toMatchObject({ homeAccountId, username: signIn.account!.username });
      if (call < 2) expect(result.idToken).toBe(signIn.idToken);
      else expect(result.idToken).toMatch(/^eyJ/); // refreshed: a new ID token
      expect(result.idTokenClaims).toMatchObject({ oid: signIn.account!.localAccountId, name: signIn.account!.name });
      expect(result.account!.idTokenClaims).toMatchObject({ oid: signIn.account!.localAccountId });
    }
    await app.removeAccount(signIn.account!);
    await expect(app.acquireTokenSilent({ homeAccountId, scopes })).rejects.toBeInstanceOf(InteractionRequiredAuthError);
  });

  it('a silent call on an expired access token refreshes it once and stores the result, as a hit answers without a write', async () => {
    // MSAL refreshes access tokens that expire within 5 minutes: every silent call here refreshes.
    const shortLived = await startFakeEntraId({ accessTokenLifetimeSeconds: 60 });
    const cache = new DistributedTokenCache();
    const client = new DistributedClientApplication(shortLived.msalConfig(), { cache });
    try {
      const signIn = await client.acquireTokenByCode({ code: shortLived.mintCode({ redirectUri }), redirectUri, scopes });
      const writes: string[] = [];
      cache.on('cache:write', ({ partitionHash }) => writes.push(partitionHash));
      const before = shortLived.tokenCallCount({ grantType: 'refresh_token' });
      const first = await client.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes });
      const second = await client.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes });
      expect([first.fromCache, second.fromCache]).toEqual([false, false]);
      expect(new Set([signIn.accessToken, first.accessToken, second.accessToken]).size).toBe(3);
      expect(shortLived.tokenCallCount({ grantType: 'refresh_token' })).toBe(before + 2);
      expect(writes).toHaveLength(2);

      const longLived = new DistributedClientApplication(entra.msalConfig(), { cache: app.cache });
      const stored = await longLived.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
      app.cache.on('cache:write', ({ partitionHash }) => writes.push(partitionHash));
      const hit = await longLived.acquireTokenSilent({ homeAccountId: stored.account!.homeAccountId, scopes });
      expect([hit.fromCache, hit.accessToken, writes.length]).toEqual([true, stored.accessToken, 2]);
    } finally {
      await cache.close();
      await shortLived.close();
    }
  });

  it('acquireTokenSilent for an unknown account throws InteractionRequiredAuthError', async () => {
    await expect(app.acquireTokenSilent({ homeAccountId: `${randomUUID()}.${entra.tenantId}`, scopes })).rejects.toBeInstanceOf(
      InteractionRequiredAuthError,
    );
  });

  it('concurrent identical silent refreshes in one process share one token request', async () => {
    const signIn = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
    const before = entra.tokenCallCount({ grantType: 'refresh_token' });
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        app.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes, forceRefresh: true }),
      ),
    );
    expect(new Set(results.map((result) => result.accessToken)).size).toBe(1);
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(before + 1);
  });

  it('concurrent silent refreshes that differ in a field that shapes the token (extraParameters) are not joined; one that differs only in correlationId and scope order is', async () => {
    const signIn = await app.acquireTokenByCode({
      code: entra.mintCode({ redirectUri, scopes: ['User.Read', 'Mail.Read'] }),
      redirectUri,
      scopes: ['User.Read', 'Mail.Read'],
    });
    const homeAccountId = signIn.account!.homeAccountId;
    const before = entra.tokenCallCount({ grantType: 'refresh_token' });
    const [plain, sliced, joined] = await Promise.all([
      app.acquireTokenSilent({ homeAccountId, scopes: ['User.Read', 'Mail.Read'], forceRefresh: true, correlationId: 'c-plain' }),
      app.acquireTokenSilent({
        homeAccountId,
        scopes: ['User.Read', 'Mail.Read'],
        forceRefresh: true,
        extraParameters: { slice: 'testslice' },
      }),
      app.acquireTokenSilent({ homeAccountId, scopes: ['Mail.Read', 'User.Read'], forceRefresh: true, correlationId: 'c-joined' }),
    ]);
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(before + 2);
    expect(sliced.accessToken).not.toBe(plain.accessToken);
    expect(joined.accessToken).toBe(plain.accessToken);
    expect([plain.correlationId, joined.correlationId]).toEqual(['c-plain', 'c-joined']); // each caller's own, as MSAL does
  });

  it('on-behalf-of tokens are cached per incoming assertion', async () => {
    const alice = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes: ['api://middle/access'] });
    const first = await app.acquireTokenOnBehalfOf({ oboAssertion: alice.accessToken, scopes: ['https://graph.example.test/User.Read'] });
    const again = await app.acquireTokenOnBehalfOf({ oboAssertion: alice.accessToken, scopes: ['https://graph.example.test/User.Read'] });
    expect(again!.accessToken).toBe(first!.accessToken);
    expect(again!.fromCache).toBe(true);
  });

  it('acquireTokenByRefreshToken stores the result in the account partition: another instance then answers silently', async () => {
    // A refresh token from elsewhere: a plain MSAL client signed the user in with its own cache.
    const legacy = new ConfidentialClientApplication(entra.msalConfig());
    const legacySignIn = await legacy.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
    const refreshTokens = JSON.parse(legacy.getTokenCache().serialize()).RefreshToken as Record<string, { secret: string }>;
    const refreshToken = Object.values(refreshTokens)[0]!.secret;
    const events: string[] = [];
    app.cache.on('cache:write', (event) => events.push(JSON.stringify(event)));

    const before = entra.tokenCallCount({ grantType: 'refresh_token' });
    const result = await app.acquireTokenByRefreshToken({ refreshToken, scopes });
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(before + 1);
    const homeAccountId = result!.account!.homeAccountId;
    expect(homeAccountId).toBe(legacySignIn.account!.homeAccountId);

    const otherInstance = new DistributedClientApplication(entra.msalConfig(), { cache: app.cache });
    const silent = await otherInstance.acquireTokenSilent({ homeAccountId, scopes });
    expect(silent.accessToken).toBe(result!.accessToken);
    expect(silent.fromCache).toBe(true);
    expect(events).toHaveLength(1);
    expect(events[0]).not.toContain(refreshToken);
  });

  it("acquireTokenByRefreshToken refuses a missing refresh token before sending anything, and passes on Entra's refusal", async () => {
    const before = entra.tokenCallCount({ grantType: 'refresh_token' });
    for (const refreshToken of [undefined, '', 42]) {
      const error = await rejectionOf(app.acquireTokenByRefreshToken({ refreshToken, scopes } as unknown as RefreshTokenRequest));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).code).toMatch(/^ERR_INVALID_ARG_(VALUE|TYPE)$/);
    }
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(before);

    const unknown = 'fake-rt.not-issued-by-this-fake';
    const refusal = await rejectionOf(app.acquireTokenByRefreshToken({ refreshToken: unknown, scopes }));
    expect((refusal as AuthError).errorCode).toBe('invalid_grant');
    expect(JSON.stringify(refusal) + String(refusal)).not.toContain(unknown);
  });

  it('close() waits for the calls in flight: a redemption under way ends, and writes its tokens, before the cache is closed', async () => {
    const request = { code: entra.mintCode({ redirectUri }), redirectUri, scopes, binding: randomUUID() };
    const order: string[] = [];
    entra.tokenLatencyMs = 200; // the token endpoint answers after close() was called
    try {
      const reachedEntra = new Promise((resolve) => entra.once('token-request', resolve));
      const redemption = app.acquireTokenByCode(request).then((result) => {
        order.push('redeemed');
        return result;
      });
      await reachedEntra;
      await app.close();
      order.push('closed');
      await app.cache.close(); // right after: what the redemption had to write is written
      expect(order).toEqual(['redeemed', 'closed']);
      const result = await redemption;
      await expect(app.acquireTokenSilent({ homeAccountId: result.account!.homeAccountId, scopes })).rejects.toBeInstanceOf(ClosedError);
    } finally {
      entra.tokenLatencyMs = 0;
    }
  });

  it('close() lets a redemption under way answer its duplicate from the cache, through the internal silent call', async () => {
    const cache = new DistributedTokenCache();
    const first = new DistributedClientApplication(entra.msalConfig(), { cache });
    const request = { code: entra.mintCode({ redirectUri }), redirectUri, scopes, binding: randomUUID() };
    const signIn = await first.acquireTokenByCode(request);
    const answeredFromCache = new Promise((resolve) => first.once('redeem:answered-from-cache', resolve));
    const duplicate = first.acquireTokenByCode(request); // late: answered by acquireTokenSilent on the cached account
    const closing = first.close();
    await expect(duplicate).resolves.toMatchObject({ account: { homeAccountId: signIn.account!.homeAccountId } });
    await answeredFromCache;
    await closing;
    expect(entra.tokenCallCount({ code: request.code })).toBe(1);
    await cache.close();
  });

  it('after close() every method throws ClosedError', async () => {
    await app.close();
    await expect(app.acquireTokenSilent({ homeAccountId: 'x.y', scopes })).rejects.toBeInstanceOf(ClosedError);
    await expect(app.getAuthCodeUrl({ redirectUri, scopes })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(app.acquireTokenByRefreshToken({ refreshToken: 'x', scopes })).rejects.toBeInstanceOf(ClosedError);
  });
});
