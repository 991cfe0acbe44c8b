// The fake Entra ID's endpoints, driven through the real @azure/msal-node wherever MSAL is the caller.
import { AuthError, ConfidentialClientApplication, CryptoProvider, ServerError } from '@azure/msal-node';
import { createPublicKey, verify, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { startFakeEntraId } from '../helpers/entra';
import { createTestCertificateAuthority, issueLoopbackServerCertificate } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

async function rejection(promise: Promise<unknown>): Promise<AuthError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof AuthError)) throw new Error(`expected an MSAL AuthError, got ${String(error)}`);
  return error;
}

describe('FakeEntraId', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());
  const newApp = (): ConfidentialClientApplication => new ConfidentialClientApplication(entra.msalConfig());

  describe('discovery', () => {
    it('serves the OpenID configuration MSAL resolves the authority from, with the issuer at the authority origin', async () => {
      const before = entra.requestCount('openid-configuration');
      await newApp().acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
      expect(entra.requestCount('openid-configuration')).toBe(before + 1);
      const document = (await (await fetch(`${entra.authority}/v2.0/.well-known/openid-configuration`)).json()) as Record<string, string>;
      expect(document.issuer).toBe(`${entra.authority}/v2.0`);
      expect(document.token_endpoint).toBe(`${entra.authority}/oauth2/v2.0/token`);
    });

    it('serves instance discovery in the shape MSAL accepts as cloudDiscoveryMetadata', async () => {
      const url = `${entra.origin}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${entra.authority}/oauth2/v2.0/authorize`)}`;
      const response = await fetch(url);
      expect(response.status).toBe(200);
      const body = await response.text();
      // MSAL parses the same body when it is given as configuration instead of fetched from Microsoft.
      const app = new ConfidentialClientApplication({
        auth: { ...entra.msalConfig().auth, knownAuthorities: [], cloudDiscoveryMetadata: body },
      });
      const result = await app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
      expect(result!.accessToken).toBeTruthy();
      expect(entra.requestCount('instance-discovery')).toBeGreaterThan(0);
    });

    it('publishes a JWKS that verifies the tokens it signs', async () => {
      const jwks = (await (await fetch(`${entra.authority}/discovery/v2.0/keys`)).json()) as {
        keys: (import('node:crypto').JsonWebKey & { kid: string; alg: string })[];
      };
      expect(jwks.keys[0]?.alg).toBe('ES256');
      const { accessToken } = (await newApp().acquireTokenByClientCredential({ scopes: ['https://jwks.example.test/.default'] }))!;
      const [header, payload, signature] = accessToken.split('.') as [string, string, string];
      expect(JSON.parse(Buffer.from(header, 'base64url').toString()).kid).toBe(jwks.keys[0]!.kid);
      const key = createPublicKey({ key: jwks.keys[0]!, format: 'jwk' });
      expect(
        verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url')),
      ).toBe(true);
    });
  });

  describe('/authorize and the authorization_code grant', () => {
    it('signs the test user in through getAuthCodeUrl with PKCE, state and nonce, and MSAL redeems the code', async () => {
      const app = newApp();
      const pkce = await new CryptoProvider().generatePkceCodes();
      const url = await app.getAuthCodeUrl({
        redirectUri,
        scopes,
        state: 'state-1',
        nonce: 'nonce-1',
        codeChallenge: pkce.challenge,
        codeChallengeMethod: 'S256',
      });
      const redirect = await entra.authorize(url);
      expect(redirect.state).toBe('state-1');
      expect(redirect.redirectUrl.startsWith(redirectUri)).toBe(true);

      const result = await app.acquireTokenByCode({
        code: redirect.code,
        redirectUri,
        scopes,
        codeVerifier: pkce.verifier,
        nonce: 'nonce-1',
      });
      const user = entra.registeredUsers[0]!;
      expect(result.account?.homeAccountId).toBe(entra.homeAccountIdOf(user));
      expect(result.account?.username).toBe(user.username);
      expect(result.account?.name).toBe(user.name);
      expect(result.idTokenClaims).toMatchObject({ nonce: 'nonce-1', oid: user.oid, tid: entra.tenantId });
      expect(result.scopes).toContain('User.Read');
      expect(entra.isAccessTokenValid(result.accessToken)).toBe(true);
    });

    it('picks the user by login_hint', async () => {
      const bob = { oid: '00000000-0000-4000-8000-000000000b0b', name: 'Bob Example', username: 'bob@example.test' };
      entra.addUser(bob);
      const app = newApp();
      const { code } = await entra.authorize(await app.getAuthCodeUrl({ redirectUri, scopes, loginHint: bob.username }));
      const result = await app.acquireTokenByCode({ code, redirectUri, scopes });
      expect(result.account?.homeAccountId).toBe(entra.homeAccountIdOf(bob));
    });

    it('answers response_mode=form_post with an auto-submitting form to the redirect URI', async () => {
      const url = await newApp().getAuthCodeUrl({ redirectUri, scopes, responseMode: 'form_post' as never });
      const response = await fetch(url, { redirect: 'manual' });
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).toContain(`action="${redirectUri}"`);
      expect(html).toMatch(/name="code" value="fake-code\./);
    });

    it('refuses an expired code with AADSTS70008', async () => {
      const code = entra.mintCode({ redirectUri });
      entra.advanceTime(10 * 60 * 1000 + 1);
      try {
        const error = await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
        expect(error).toBeInstanceOf(ServerError);
        expect(Number((error as ServerError).errorNo)).toBe(70008);
        expect(error.errorMessage).toContain('AADSTS70008');
      } finally {
        entra.advanceTime(-(10 * 60 * 1000 + 1));
      }
    });

    it.each([
      ['a wrong verifier', 'not-the-verifier'],
      ['no verifier', undefined],
    ])('refuses %s for a PKCE code with AADSTS501481, and the code stays redeemable', async (_name, verifier) => {
      const pkce = await new CryptoProvider().generatePkceCodes();
      const code = entra.mintCode({ redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
      const error = await rejection(
        newApp().acquireTokenByCode({ code, redirectUri, scopes, ...(verifier !== undefined && { codeVerifier: verifier }) }),
      );
      expect(Number((error as ServerError).errorNo)).toBe(501481);
      const result = await newApp().acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: pkce.verifier });
      expect(result.accessToken).toBeTruthy();
    });

    it('refuses a redirect_uri other than the one the code was issued for', async () => {
      const code = entra.mintCode({ redirectUri });
      const error = await rejection(newApp().acquireTokenByCode({ code, redirectUri: 'https://evil.example.test/cb', scopes }));
      expect(Number((error as ServerError).errorNo)).toBe(50011);
    });

    it('refuses an unknown code with AADSTS70000', async () => {
      const error = await rejection(newApp().acquireTokenByCode({ code: 'fake-code.unknown', redirectUri, scopes }));
      expect(Number((error as ServerError).errorNo)).toBe(70000);
    });

    it('refuses a wrong client secret with invalid_client', async () => {
      const config = entra.msalConfig();
      const app = new ConfidentialClientApplication({ auth: { ...config.auth, clientSecret: 'wrong' } });
      const error = await rejection(app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] }));
      expect(error.errorCode).toBe('invalid_client');
    });

    it('writes errors in Entra JSON shape, with Trace ID, Correlation ID and Timestamp in the description', async () => {
      const body = new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: entra.msalConfig().auth.clientId,
        client_secret: entra.msalConfig().auth.clientSecret,
        code: 'fake-code.x',
        redirect_uri: redirectUri,
      });
      const response = await fetch(`${entra.authority}/oauth2/v2.0/token`, {
        method: 'POST',
        body,
        headers: { 'client-request-id': 'corr-1' },
      });
      expect(response.status).toBe(400);
      const json = (await response.json()) as Record<string, unknown>;
      expect(Object.keys(json).sort()).toEqual([
        'correlation_id',
        'error',
        'error_codes',
        'error_description',
        'error_uri',
        'timestamp',
        'trace_id',
      ]);
      expect(json.error_description).toMatch(
        /^AADSTS70000: .* Trace ID: [0-9a-f-]{36} Correlation ID: corr-1 Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/,
      );
      expect(json.correlation_id).toBe('corr-1');
    });

    it('revokes the tokens of a code presented again when revokeTokensOnCodeReuse is on (RFC 6749 §4.1.2)', async () => {
      entra.revokeTokensOnCodeReuse = true;
      try {
        const app = newApp();
        const code = entra.mintCode({ redirectUri });
        const first = await app.acquireTokenByCode({ code, redirectUri, scopes });
        await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
        expect(entra.isAccessTokenValid(first.accessToken)).toBe(false);
        const refresh = await rejection(app.acquireTokenSilent({ account: first.account!, scopes, forceRefresh: true }));
        expect(refresh.errorCode).toBe('invalid_grant');
      } finally {
        entra.revokeTokensOnCodeReuse = false;
      }
    });
  });

  describe('other grants', () => {
    it('refresh_token: issues a new, rotated refresh token', async () => {
      const app = newApp();
      const first = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
      const refreshTokenBefore = Object.values(
        JSON.parse(app.getTokenCache().serialize()).RefreshToken as Record<string, { secret: string }>,
      )[0]!.secret;
      const before = entra.tokenCallCount({ grantType: 'refresh_token' });
      const refreshed = await app.acquireTokenSilent({ account: first.account!, scopes, forceRefresh: true });
      expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(before + 1);
      expect(refreshed.accessToken).not.toBe(first.accessToken);
      const refreshTokenAfter = Object.values(
        JSON.parse(app.getTokenCache().serialize()).RefreshToken as Record<string, { secret: string }>,
      )[0]!.secret;
      expect(refreshTokenAfter).not.toBe(refreshTokenBefore);
    });

    it('client_credentials: an app token, then MSAL answers from its cache', async () => {
      const app = newApp();
      const before = entra.tokenCallCount({ grantType: 'client_credentials' });
      const first = await app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
      const second = await app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
      expect(second!.accessToken).toBe(first!.accessToken);
      expect(entra.tokenCallCount({ grantType: 'client_credentials' })).toBe(before + 1);
    });

    it("on-behalf-of: exchanges a user's access token for one for the same user", async () => {
      const user = await newApp().acquireTokenByCode({
        code: entra.mintCode({ redirectUri }),
        redirectUri,
        scopes: ['api://middle-tier/access'],
      });
      const result = await newApp().acquireTokenOnBehalfOf({
        oboAssertion: user.accessToken,
        scopes: ['https://graph.example.test/User.Read'],
      });
      expect(entra.verifyAccessToken(result!.accessToken)).toMatchObject({ oid: entra.registeredUsers[0]!.oid });
      expect(entra.tokenCallCount({ grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer' })).toBeGreaterThan(0);
    });

    it('on-behalf-of: refuses an assertion it did not sign', async () => {
      const error = await rejection(
        newApp().acquireTokenOnBehalfOf({ oboAssertion: 'a.b.c', scopes: ['https://graph.example.test/User.Read'] }),
      );
      expect(Number((error as ServerError).errorNo)).toBe(50013);
    });
  });

  describe('test controls', () => {
    it('counts token calls per grant type and per code', async () => {
      const code = entra.mintCode({ redirectUri });
      expect(entra.tokenCallCount({ code })).toBe(0);
      await newApp().acquireTokenByCode({ code, redirectUri, scopes });
      await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
      expect(entra.tokenCallCount({ code })).toBe(2);
      expect(entra.tokenCallCount({ grantType: 'authorization_code' })).toBeGreaterThanOrEqual(2);
    });

    it('injects latency: the answer is sent no earlier than tokenLatencyMs after the request arrived', async () => {
      entra.tokenLatencyMs = 100;
      try {
        const before = entra.tokenRequests.length;
        const startedAt = Date.now();
        await newApp().acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
        expect(entra.tokenRequests.length).toBe(before + 1);
        expect(Date.now() - startedAt).toBeGreaterThanOrEqual(99); // a lower bound: timers never fire early
      } finally {
        entra.tokenLatencyMs = 0;
      }
    });

    it('accessTokenLifetimeSeconds can change at any time: a sign-in in MSAL’s refresh window, then a refresh out of it', async () => {
      const app = newApp();
      entra.accessTokenLifetimeSeconds = 200;
      let signIn;
      try {
        signIn = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
      } finally {
        entra.accessTokenLifetimeSeconds = 3600;
      }
      const lifetime = (accessToken: string): unknown => {
        const claims = entra.verifyAccessToken(accessToken)!;
        return (claims.exp as number) - (claims.iat as number);
      };
      expect(lifetime(signIn.accessToken)).toBe(200);
      // Within MSAL's 5-minute renewal offset: the silent call refreshes, and gets the current lifetime.
      const before = entra.tokenCallCount({ grantType: 'refresh_token' });
      const refreshed = await app.acquireTokenSilent({ account: signIn.account!, scopes });
      expect([refreshed.fromCache, entra.tokenCallCount({ grantType: 'refresh_token' })]).toEqual([false, before + 1]);
      expect(lifetime(refreshed.accessToken)).toBe(3600);
      const again = await app.acquireTokenSilent({ account: signIn.account!, scopes });
      expect([again.fromCache, again.accessToken]).toEqual([true, refreshed.accessToken]);
    });

    it.each([
      ['http500', 500],
      ['http503', 503],
    ] as const)('injects %s: MSAL gets a ServerError and the code is not consumed', async (kind, status) => {
      const code = entra.mintCode({ redirectUri });
      entra.injectFailure(kind, { grantType: 'authorization_code' });
      const error = await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
      expect(error).toBeInstanceOf(ServerError);
      expect(entra.tokenRequests.at(-1)?.outcome).toBe(status);
      expect((await newApp().acquireTokenByCode({ code, redirectUri, scopes })).accessToken).toBeTruthy();
    });

    it('injects a dropped connection: MSAL gets a network error and the code is not consumed', async () => {
      const code = entra.mintCode({ redirectUri });
      entra.injectFailure('drop', { grantType: 'authorization_code' });
      const error = await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
      expect(error.errorCode).toBe('network_error');
      expect((await newApp().acquireTokenByCode({ code, redirectUri, scopes })).accessToken).toBeTruthy();
    });

    it('injects redeem-then-drop: MSAL sees a network error, yet the code is spent and a retry gets AADSTS54005', async () => {
      const code = entra.mintCode({ redirectUri });
      entra.injectFailure('redeemThenDrop', { grantType: 'authorization_code' });
      const error = await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
      expect(error.errorCode).toBe('network_error');
      const retry = await rejection(newApp().acquireTokenByCode({ code, redirectUri, scopes }));
      expect(Number((retry as ServerError).errorNo)).toBe(54005);
      expect(entra.tokenCallCount({ code })).toBe(2);
    });

    it('injects a hang: the token request is recorded and never answered, and the code is not consumed', async () => {
      const code = entra.mintCode({ redirectUri });
      entra.injectFailure('hang', { grantType: 'authorization_code' });
      const abort = new AbortController();
      const arrived = once(entra, 'token-request');
      const post = fetch(`${entra.authority}/oauth2/v2.0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: entra.msalConfig().auth.clientId, code }).toString(),
        signal: abort.signal,
      });
      await arrived;
      expect(entra.tokenRequests.at(-1)?.outcome).toBe('unanswered');
      abort.abort(); // the fake never answers: the client gives up
      await expect(post).rejects.toMatchObject({ name: 'AbortError' });
      expect((await newApp().acquireTokenByCode({ code, redirectUri, scopes })).accessToken).toBeTruthy();
    });

    it('holds token answers until released: the request is recorded at once, answered only after release()', async () => {
      const code = entra.mintCode({ redirectUri });
      const release = entra.holdTokenResponses();
      let settled = false;
      const arrived = once(entra, 'token-request');
      const redemption = newApp()
        .acquireTokenByCode({ code, redirectUri, scopes })
        .finally(() => (settled = true));
      await arrived;
      expect(entra.tokenCallCount({ code })).toBe(1);
      expect(settled).toBe(false);
      release();
      expect((await redemption).accessToken).toBeTruthy();
      release(); // harmless twice
      expect(
        (await newApp().acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] }))?.accessToken,
      ).toBeTruthy();
    });

    it('keeps idle connections open, so connections reused right after the test process stalled for 6.5 s still work', async () => {
      // With Node's default server keep-alive (5 s) against undici's (4 s), a stall of the process
      // hosting both longer than both timeouts made requests go out on connections the server was
      // resetting: ECONNRESET, which MSAL reports as a network_error (seen once in CI, in a test
      // of 10,000 redemptions). The stall is real: the thread blocks. MSAL uses this same fetch;
      // POST, as token requests are, since undici may retry an idempotent GET on a reset.
      const fetchMany = async (): Promise<unknown[]> => {
        const post = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=none' };
        const requests = Array.from({ length: 20 }, () =>
          fetch(`${entra.authority}/oauth2/v2.0/token`, post).then((response) => response.json()),
        );
        return (await Promise.allSettled(requests)).filter((result) => result.status === 'rejected');
      };
      expect(await fetchMany()).toEqual([]);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 6_500); // past both timeouts, with margin
      expect(await fetchMany()).toEqual([]);
    });

    it('records codes only as SHA-256 hashes', async () => {
      const code = entra.mintCode({ redirectUri });
      await newApp().acquireTokenByCode({ code, redirectUri, scopes });
      expect(JSON.stringify(entra.tokenRequests)).not.toContain(code);
    });
  });
});

describe('test certificates', () => {
  it('encode serial numbers minimally, so OpenSSL accepts every certificate (a leading zero byte is illegal padding)', () => {
    const ca = createTestCertificateAuthority();
    for (let round = 0; round < 600; round++) {
      const { certPem } = issueLoopbackServerCertificate(ca);
      expect(() => new X509Certificate(certPem)).not.toThrow();
    }
  });
});
