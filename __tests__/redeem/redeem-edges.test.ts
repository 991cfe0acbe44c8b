// Redeem-once at the edges (issue 12, items 5 to 9): a lock store that fails after a duplicate saw
// the code busy, a refresh after AADSTS54005 that gets no answer, failures before the code left
// the process, a token endpoint that never answers, and lock-store failures that must be visible.
// Real MSAL, the fake Entra ID (holding or hanging its answers), real redis-servers paused with SIGSTOP.
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { ClientAuthError } from '@azure/msal-node';
import {
  DistributedClientApplication,
  DistributedTokenCache,
  MemoryLockStore,
  RedisLockStore,
  StoreUnavailableError,
  TokenEndpointUnavailableError,
} from '../../src';
import type { LockStore, RedeemOptions, StoreErrorEvent } from '../../src';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId, TokenRequestRecord } from '../../src/testing';
import { newPkceSignIn, useFakeEntraId } from '../helpers/entra';
import { redisUrl } from '../helpers/stores';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

/** Resolves with the fake's record of the `nth` (1-based) token request that carries `code`. */
function tokenRequestFor(entra: FakeEntraId, code: string, nth = 1): Promise<TokenRequestRecord> {
  const codeHash = sha256(code);
  let seen = entra.tokenRequests.filter((record) => record.codeHash === codeHash).length;
  return new Promise((resolve) => {
    const listener = (record: TokenRequestRecord): void => {
      if (record.codeHash !== codeHash || ++seen < nth) return;
      entra.off('token-request', listener);
      resolve(record);
    };
    entra.on('token-request', listener);
  });
}

/** A loopback port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('redeem-once at the edges', () => {
  /** A fake Entra ID per test; cleanups run after the test, in reverse order. */
  const { entra, cleanups } = useFakeEntraId();

  /** An app instance in this process: tokens in the shared Redis under `keyPrefix`, locks in `lockStore`. */
  function instance(lockStore: LockStore, keyPrefix: string, redeem: RedeemOptions = {}, config = entra().msalConfig()) {
    const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(redisUrl()) }), lockStore, keyPrefix });
    cleanups.push(() => cache.close()); // also closes the lock store
    const app = new DistributedClientApplication(config, { cache, redeem });
    const lockErrors: StoreErrorEvent[] = [];
    cache.on('store:error', (event) => event.operation === 'lock' && lockErrors.push(event));
    return { app, lockErrors };
  }

  /** A redis-server of the test's own for the lock store, to pause; thawed and stopped after the test. */
  async function lockRedis(): Promise<RedisServer> {
    const server = await RedisServer.start();
    cleanups.push(() => server.stop());
    cleanups.push(() => server.resume()); // runs first: the caches close against a live server
    return server;
  }

  it("Edge 5: with lockStoreFailure 'fail-open', a duplicate that saw the code busy gets ERR_STORE_UNAVAILABLE when the lock store then stops answering, and the code is sent once", async () => {
    const server = await lockRedis();
    const keyPrefix = `edges-${randomUUID()}:`;
    const lockStoreOf = () => new RedisLockStore({ url: server.url, keyPrefix, commandTimeoutMs: 300 });
    const a = instance(lockStoreOf(), keyPrefix, { lockStoreFailure: 'fail-open' });
    const b = instance(lockStoreOf(), keyPrefix, { lockStoreFailure: 'fail-open' });
    const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
    const request = { code, redirectUri, scopes, codeVerifier: verifier };

    const release = entra().holdTokenResponses(); // the winner's token request waits at the fake
    cleanups.push(release);
    const winnerReachedEntra = tokenRequestFor(entra(), code);
    const first = a.app.acquireTokenByCode(request);
    await winnerReachedEntra;
    const duplicateWaits = once(b.app, 'redeem:waited');
    const duplicate = b.app.acquireTokenByCode(request).catch((error: unknown) => error);
    await duplicateWaits; // B has seen the code busy
    server.pause();

    // Without the fix B fails open and sends the code again: that second request is the answer here.
    const sentAgain = tokenRequestFor(entra(), code, 2).then(() => 'the duplicate sent the code a second time');
    const outcome = await Promise.race([duplicate, sentAgain]);
    expect(outcome).toBeInstanceOf(StoreUnavailableError);
    expect(outcome).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE', message: expect.stringContaining('retry the request') });
    expect((outcome as Error).message).not.toContain(code);
    expect(entra().tokenCallCount({ code })).toBe(1);
    expect(b.lockErrors).toContainEqual(expect.objectContaining({ operation: 'lock', code: 'ERR_STORE_UNAVAILABLE', outcome: 'thrown' }));

    server.resume();
    release();
    expect((await first).account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
    expect(entra().tokenCallCount({ code })).toBe(1);
  });

  describe('Edge 6: after AADSTS54005, only a refusal by the server removes tokens', () => {
    /** Two instances sharing the token store but (misconfigured) not a lock store: B's redemption gets AADSTS54005. */
    async function redeemedTwice() {
      const keyPrefix = `edges-${randomUUID()}:`;
      const a = instance(new MemoryLockStore(), keyPrefix);
      const b = instance(new MemoryLockStore(), keyPrefix);
      const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
      const request = { code, redirectUri, scopes, codeVerifier: verifier };
      await a.app.acquireTokenByCode(request);
      return { a, b, request, homeAccountId: entra().homeAccountIdOf(user) };
    }

    it('a 503 on the refresh leaves the partition intact and gives a retryable ERR_TOKEN_ENDPOINT_UNAVAILABLE; the retry is answered', async () => {
      const { a, b, request, homeAccountId } = await redeemedTwice();
      const refused: string[] = [];
      b.app.on('redeem:refused', ({ reason }) => refused.push(reason));
      entra().injectFailure('http503', { grantType: 'refresh_token' });

      const error = await b.app.acquireTokenByCode(request).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TokenEndpointUnavailableError);
      expect(error).toMatchObject({ code: 'ERR_TOKEN_ENDPOINT_UNAVAILABLE', message: expect.stringContaining('retry') });
      expect(refused).toEqual([]);

      // The user is still signed in everywhere, and the same callback retried gets tokens through a refresh.
      expect((await a.app.acquireTokenSilent({ homeAccountId, scopes })).account?.homeAccountId).toBe(homeAccountId);
      const answered = once(b.app, 'redeem:answered-from-cache');
      const retried = await b.app.acquireTokenByCode(request);
      expect(retried.account?.homeAccountId).toBe(homeAccountId);
      expect((await answered)[0]).toMatchObject({ homeAccountId, afterServerRejection: true });
      expect(entra().tokenCallCount({ code: request.code })).toBe(2); // A's redemption, B's AADSTS54005: never a third
    });

    it('a refused refresh (invalid_grant: the server revoked the first tokens) still purges the account', async () => {
      entra().revokeTokensOnCodeReuse = true;
      const { a, b, request, homeAccountId } = await redeemedTwice();
      await expect(b.app.acquireTokenByCode(request)).rejects.toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED' });
      expect(await a.app.getAccountByHomeId(homeAccountId)).toBeNull();
    });
  });

  describe('Edge 7: a failure before the code left the process frees the code', () => {
    it.each([
      ['MemoryLockStore', (): LockStore => new MemoryLockStore()],
      ['RedisLockStore', (): LockStore => new RedisLockStore({ url: redisUrl(), keyPrefix: `edges-${randomUUID()}:` })],
    ])("MSAL's state check fails (%s): nothing is sent, and the retry with the right state redeems the code", async (_store, lockStore) => {
      const { app } = instance(lockStore(), `edges-${randomUUID()}:`);
      const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
      const request = { code, redirectUri, scopes, codeVerifier: verifier, state: 'state-of-this-sign-in' };

      const error = await app.acquireTokenByCode(request, { code, state: 'forged-state' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ClientAuthError);
      expect(error).toMatchObject({ errorCode: 'state_mismatch' });
      expect(entra().tokenCallCount({ code })).toBe(0);

      const result = await app.acquireTokenByCode(request, { code, state: 'state-of-this-sign-in' });
      expect(result.account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
      expect(entra().tokenCallCount({ code })).toBe(1);
    });

    it('discovery fails (connection refused) before the token request: the retry redeems the code', async () => {
      const deadHost = `127.0.0.1:${await closedPort()}`;
      const config = entra().msalConfig();
      const { app } = instance(
        new MemoryLockStore(),
        `edges-${randomUUID()}:`,
        {},
        {
          ...config,
          auth: { ...config.auth, knownAuthorities: [entra().host, deadHost] },
        },
      );
      const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
      const request = { code, redirectUri, scopes, codeVerifier: verifier };

      // MSAL cannot fetch the dead authority's OpenID configuration: it never gets to the token request.
      await expect(app.acquireTokenByCode({ ...request, authority: `https://${deadHost}/${entra().tenantId}` })).rejects.toMatchObject({
        name: 'ClientAuthError',
        errorCode: 'endpoints_resolution_error',
      });
      expect(entra().tokenCallCount({ code })).toBe(0);

      const result = await app.acquireTokenByCode(request);
      expect(result.account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
      expect(entra().tokenCallCount({ code })).toBe(1);
    });

    it('a network failure after the token request was sent is still recorded: the retry is refused and nothing is sent again', async () => {
      const { app } = instance(new RedisLockStore({ url: redisUrl(), keyPrefix: `edges-${randomUUID()}:` }), `edges-${randomUUID()}:`);
      const { code, verifier } = await newPkceSignIn(entra(), redirectUri);
      const request = { code, redirectUri, scopes, codeVerifier: verifier };
      entra().injectFailure('drop', { grantType: 'authorization_code' });
      await expect(app.acquireTokenByCode(request)).rejects.toMatchObject({ code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN' });
      await expect(app.acquireTokenByCode(request)).rejects.toMatchObject({ code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN' });
      expect(entra().tokenCallCount({ code })).toBe(1);
    });
  });

  it('Edge 8: a token request that never answers ends, after redeem.tokenRequestTimeoutMs, as ERR_REDEMPTION_OUTCOME_UNKNOWN for the caller and its duplicates, and close() resolves', async () => {
    const keyPrefix = `edges-${randomUUID()}:`;
    const lockStoreOf = () => new RedisLockStore({ url: redisUrl(), keyPrefix });
    const a = instance(lockStoreOf(), keyPrefix, { tokenRequestTimeoutMs: 200 });
    const b = instance(lockStoreOf(), keyPrefix);
    const { code, verifier } = await newPkceSignIn(entra(), redirectUri);
    const request = { code, redirectUri, scopes, codeVerifier: verifier };
    entra().injectFailure('hang', { grantType: 'authorization_code' });

    const reachedEntra = tokenRequestFor(entra(), code);
    const first = a.app.acquireTokenByCode(request).catch((error: unknown) => error);
    await reachedEntra;
    const closed = a.app.close(); // waits for the redemption in flight: only its deadline ends it
    expect(await first).toMatchObject({ code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN' });
    await closed;
    expect(a.app.redemptionsInFlight).toBe(0);
    // Recorded as unknown: a duplicate on another instance is answered at once, and nothing is sent again.
    await expect(b.app.acquireTokenByCode(request)).rejects.toMatchObject({ code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN' });
    expect(entra().tokenCallCount({ code })).toBe(1);
    expect(entra().tokenRequests.find((record) => record.codeHash === sha256(code))?.outcome).toBe('unanswered');
  });

  it.each([0, -1, 1.5, '200'])('Edge 8: refuses redeem.tokenRequestTimeoutMs %p with ERR_INVALID_ARG_* naming the option', (value) => {
    const cache = new DistributedTokenCache();
    cleanups.push(() => cache.close());
    expect(
      () => new DistributedClientApplication(entra().msalConfig(), { cache, redeem: { tokenRequestTimeoutMs: value as number } }),
    ).toThrow(
      expect.objectContaining({
        code: expect.stringMatching(/^ERR_INVALID_ARG_/),
        message: expect.stringContaining('"options.redeem.tokenRequestTimeoutMs"'),
      }),
    );
  });

  it('Edge 9: a lock store that fails while the outcome is recorded is reported as store:error (operation lock, ignored); the redeemer still gets its tokens', async () => {
    const server = await lockRedis();
    const keyPrefix = `edges-${randomUUID()}:`;
    const a = instance(new RedisLockStore({ url: server.url, keyPrefix, commandTimeoutMs: 300 }), keyPrefix);
    const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);

    const release = entra().holdTokenResponses();
    cleanups.push(release);
    const reachedEntra = tokenRequestFor(entra(), code);
    const first = a.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
    await reachedEntra;
    server.pause(); // the claim was taken; recording its outcome will find the lock store frozen
    release();

    expect((await first).account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
    expect(a.lockErrors).toEqual([
      expect.objectContaining({
        operation: 'lock',
        code: 'ERR_STORE_UNAVAILABLE',
        outcome: 'ignored',
        error: expect.objectContaining({ message: expect.stringContaining('complete') }),
      }),
    ]);
    expect(a.lockErrors[0]).not.toHaveProperty('partitionHash');
    expect(JSON.stringify(a.lockErrors)).not.toContain(code);
    expect(entra().tokenCallCount({ code })).toBe(1);
  });
});
