// Redeem-once in one process, through the real MSAL and the fake Entra ID: joining, bindings,
// AADSTS54005 from the server (both shapes), expired codes, and failures that are never retried.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import { CryptoProvider, ServerError } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore } from '../../src';
import type { RedeemEvents } from '../../src';
import { startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId, FakeUser } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('acquireTokenByCode: redeem-once', () => {
  let entra: FakeEntraId;
  let caches: DistributedTokenCache[];
  beforeEach(async () => {
    entra = await startFakeEntraId();
    caches = [];
  });
  afterEach(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    await entra.close();
  });

  /** An app instance; instances built from one `store` share the token cache, each with its own lock store. */
  function instance(store = new Keyv()): { app: DistributedClientApplication; events: [keyof RedeemEvents, unknown][] } {
    const cache = new DistributedTokenCache({ store, lockStore: new MemoryLockStore() });
    caches.push(cache);
    const app = new DistributedClientApplication(entra.msalConfig(), { cache });
    const events: [keyof RedeemEvents, unknown][] = [];
    for (const name of [
      'redeem:redeemed',
      'redeem:joined',
      'redeem:waited',
      'redeem:answered-from-cache',
      'redeem:refused',
      'lock:lost',
    ] as const) {
      app.on(name, (event: unknown) => events.push([name, event]));
    }
    return { app, events };
  }

  async function pkceCode(user?: FakeUser): Promise<{ code: string; verifier: string }> {
    const pkce = await new CryptoProvider().generatePkceCodes();
    return {
      code: entra.mintCode({ redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256', ...(user && { user }) }),
      verifier: pkce.verifier,
    };
  }

  it('concurrent duplicates in one process join the one redemption', async () => {
    const { app, events } = instance();
    const { code, verifier } = await pkceCode();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })),
    );
    expect(new Set(results.map((result) => result.accessToken)).size).toBe(1);
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(events.filter(([name]) => name === 'redeem:joined')).toHaveLength(9);
    expect(events.filter(([name]) => name === 'redeem:redeemed')).toHaveLength(1);
    expect(app.redemptionsInFlight).toBe(0);
  });

  it('an explicit binding (a random value per sign-in) proves a duplicate; another binding is refused', async () => {
    const { app, events } = instance();
    const code = entra.mintCode({ redirectUri });
    const first = await app.acquireTokenByCode({ code, redirectUri, scopes, binding: 'sign-in-1' });
    const same = await app.acquireTokenByCode({ code, redirectUri, scopes, binding: 'sign-in-1' });
    expect(same.account?.homeAccountId).toBe(first.account?.homeAccountId);
    await expect(app.acquireTokenByCode({ code, redirectUri, scopes, binding: 'sign-in-2' })).rejects.toMatchObject({
      code: 'ERR_CODE_ALREADY_REDEEMED',
    });
    // Without proof: the error says what to pass, and that the session id is not a good binding.
    await expect(app.acquireTokenByCode({ code, redirectUri, scopes })).rejects.toMatchObject({
      code: 'ERR_CODE_ALREADY_REDEEMED',
      reason: 'no-binding',
      message: expect.stringContaining('a random value made at sign-in and kept in the session, not the session id'),
    });
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(events.filter(([name]) => name === 'redeem:refused').map(([, event]) => (event as { reason: string }).reason)).toEqual([
      'binding-mismatch',
      'no-binding',
    ]);
  });

  it("a late duplicate with the right verifier, after the user signed out, gets ERR_CODE_ALREADY_REDEEMED (tokens gone), not MSAL's error", async () => {
    const { app, events } = instance();
    const { code, verifier } = await pkceCode();
    const first = await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
    await app.removeAccount(first.account!);
    const error = await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED', message: expect.stringContaining('no longer usable') });
    expect(events.filter(([name]) => name === 'redeem:refused').map(([, event]) => (event as { reason: string }).reason)).toEqual([
      'tokens-gone',
    ]);
    expect(entra.tokenCallCount({ code })).toBe(1);
  });

  it('without PKCE or a binding, even the first caller of a duplicate pair cannot vouch for the second', async () => {
    const { app } = instance();
    const code = entra.mintCode({ redirectUri });
    await app.acquireTokenByCode({ code, redirectUri, scopes });
    await expect(app.acquireTokenByCode({ code, redirectUri, scopes })).rejects.toMatchObject({
      name: 'CodeAlreadyRedeemedError',
      code: 'ERR_CODE_ALREADY_REDEEMED',
    });
    expect(entra.tokenCallCount({ code })).toBe(1);
  });

  describe.each([
    ['[54005]', false],
    ['[70002, 54005]', true],
  ])('AADSTS54005 from the server, error_codes %s', (_shape, legacy) => {
    beforeEach(() => {
      entra.legacyCodeReusedShape = legacy;
    });

    it('is answered from the outcome record through a refresh, not the cached access token', async () => {
      // Two instances that share the token store but (misconfigured) not a lock store.
      const store = new Keyv();
      const a = instance(store);
      const b = instance(store);
      const { code, verifier } = await pkceCode();
      const first = await a.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
      const refreshesBefore = entra.tokenCallCount({ grantType: 'refresh_token' });
      const second = await b.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
      expect(entra.tokenCallCount({ code })).toBe(2); // b's own lock store let it through; the server refused
      expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(refreshesBefore + 1);
      expect(second.account?.homeAccountId).toBe(first.account?.homeAccountId);
      expect(second.accessToken).not.toBe(first.accessToken);
      expect(b.events).toContainEqual(['redeem:answered-from-cache', expect.objectContaining({ afterServerRejection: true })]);
    });

    it('when the server revoked the first tokens, the dead tokens are purged and the duplicate gets ERR_CODE_ALREADY_REDEEMED', async () => {
      entra.revokeTokensOnCodeReuse = true;
      const store = new Keyv();
      const a = instance(store);
      const b = instance(store);
      const { code, verifier } = await pkceCode();
      const first = await a.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
      await expect(b.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
        code: 'ERR_CODE_ALREADY_REDEEMED',
      });
      expect(entra.isAccessTokenValid(first.accessToken)).toBe(false);
      expect(await a.app.getAccountByHomeId(first.account!.homeAccountId)).toBeNull();
    });

    it('without an outcome record (redeemed outside this library) the duplicate gets ERR_CODE_ALREADY_REDEEMED, with the MSAL error as cause', async () => {
      const { app } = instance();
      const { code, verifier } = await pkceCode();
      const { ConfidentialClientApplication } = await import('@azure/msal-node');
      await new ConfidentialClientApplication(entra.msalConfig()).acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
      const error = await app
        .acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })
        .catch((caught: unknown) => caught as Error);
      expect(error).toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED', message: expect.stringContaining('/authorize') });
      expect((error as Error).cause).toBeInstanceOf(ServerError);
      expect((error as Error).message).not.toContain(code);
    });
  });

  it('an expired code gives ERR_CODE_EXPIRED, and its duplicates too, without another token call', async () => {
    const { app } = instance();
    const { code, verifier } = await pkceCode();
    entra.advanceTime(10 * 60_000 + 1);
    try {
      await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
        code: 'ERR_CODE_EXPIRED',
      });
      await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
        code: 'ERR_CODE_EXPIRED',
      });
      expect(entra.tokenCallCount({ code })).toBe(1);
    } finally {
      entra.advanceTime(-(10 * 60_000 + 1));
    }
  });

  it.each(['redeemThenDrop', 'drop', 'http500', 'http503'] as const)(
    'a token request that fails without an answer (%s) is reported as ERR_REDEMPTION_OUTCOME_UNKNOWN and never retried with the same code',
    async (failure) => {
      const { app } = instance();
      const { code, verifier } = await pkceCode();
      entra.injectFailure(failure, { grantType: 'authorization_code' });
      await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
        code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN',
      });
      await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
        code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN',
      });
      expect(entra.tokenCallCount({ code })).toBe(1);
    },
  );

  it("a failed first redemption (PKCE mismatch) passes MSAL's error through; a duplicate gets ERR_REDEMPTION_FAILED and is not sent", async () => {
    const { app } = instance();
    const { code, verifier } = await pkceCode();
    await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: 'wrong-verifier' })).rejects.toBeInstanceOf(ServerError);
    await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
      code: 'ERR_REDEMPTION_FAILED',
    });
    expect(entra.tokenCallCount({ code })).toBe(1);
  });

  it.each([
    ['an empty code', { code: '' }, 'request.code'],
    ['a non-string code', { code: 42 }, 'request.code'],
    ['scopes that are not an array', { scopes: 'User.Read' }, 'request.scopes'],
    ['an empty binding', { binding: '' }, 'request.binding'],
  ])('refuses %s with ERR_INVALID_ARG_* naming the field, before anything is sent', async (_name, change, field) => {
    const { app } = instance();
    const request = { code: entra.mintCode({ redirectUri }), redirectUri, scopes, ...change } as never;
    await expect(app.acquireTokenByCode(request)).rejects.toMatchObject({
      name: 'InvalidArgumentError',
      message: expect.stringContaining(`"${field}"`),
    });
    expect(entra.tokenCallCount()).toBe(0);
  });

  it('a new user signs in with a fresh code while an older one is still cached', async () => {
    const { app } = instance();
    const user = { oid: randomUUID(), name: 'Again', username: `${randomUUID().slice(0, 8)}@example.test` };
    entra.addUser(user);
    const first = await pkceCode(user);
    await app.acquireTokenByCode({ code: first.code, redirectUri, scopes, codeVerifier: first.verifier });
    const second = await pkceCode(user);
    const again = await app.acquireTokenByCode({ code: second.code, redirectUri, scopes, codeVerifier: second.verifier });
    expect(again.account?.homeAccountId).toBe(entra.homeAccountIdOf(user));
  });
});
