// Everything the library exports through OpenTelemetry (metric points with their attributes, spans
// with their attributes, events, links and status messages), after a run of every operation, its
// failures and its duplicates, holds no secret: no access, refresh or ID token, no code, client
// secret, PKCE verifier, binding or on-behalf-of assertion, no raw homeAccountId or object id.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import { ConfidentialClientApplication, CryptoProvider } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, PartitionKey } from '../../src';
import { internalsOf } from '../../src/cache/cache-internals';
import { addRandomUser, useFakeEntraId } from '../helpers/entra';
import { rejectionOf } from '../helpers/assertions';
import { OtelHarness } from '../helpers/otel';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

const { entra, cleanups } = useFakeEntraId();

it('a scan of every exported metric and span finds no secret', async () => {
  const otel = new OtelHarness();
  cleanups.push(() => otel.close());
  const secrets: string[] = [];
  const keep = <T extends string | undefined>(value: T): T => (value && secrets.push(value), value);
  const config = entra().msalConfig();
  keep(config.auth.clientSecret);
  const cache = new DistributedTokenCache({ store: new Keyv(), telemetry: otel.telemetry });
  const app = new DistributedClientApplication(config, { cache });
  cleanups.push(
    () => app.close(),
    () => cache.close(),
  );
  const user = addRandomUser(entra());
  keep(user.oid);
  const pkce = await new CryptoProvider().generatePkceCodes();
  const code = keep(entra().mintCode({ redirectUri, user, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' }));
  const binding = keep(`binding-${randomUUID()}`);
  const request = { code, redirectUri, scopes, codeVerifier: keep(pkce.verifier), binding };

  await otel.tracerProvider.getTracer('the-app').startActiveSpan('callback', async (span) => {
    const signIn = await app.acquireTokenByCode(request);
    const homeAccountId = keep(signIn.account!.homeAccountId);
    keep(signIn.accessToken);
    keep(signIn.idToken);
    await app.acquireTokenByCode(request); // a duplicate, answered
    await rejectionOf(app.acquireTokenByCode({ ...request, binding: keep(`other-${randomUUID()}`) })); // refused
    const refreshed = await app.acquireTokenSilent({ homeAccountId, scopes, forceRefresh: true });
    keep(refreshed.accessToken);
    keep(refreshed.idToken);
    const partition = PartitionKey.forAccount(homeAccountId).forClient(config.auth.clientId);
    const { document } = await internalsOf(cache).repository.read(partition);
    const refreshTokens = Object.values(document.RefreshToken).map((entry) => keep((entry as { secret: string }).secret));
    expect(refreshTokens.length).toBeGreaterThan(0);
    const migrated = await app.acquireTokenByRefreshToken({ refreshToken: refreshTokens[0]!, scopes });
    keep(migrated!.accessToken);
    await rejectionOf(app.acquireTokenByRefreshToken({ refreshToken: keep(`revoked-${randomUUID()}`), scopes }));
    const obo = await app.acquireTokenOnBehalfOf({ oboAssertion: refreshed.accessToken, scopes: ['https://graph.example.test/User.Read'] });
    keep(obo!.accessToken);
    await rejectionOf(app.acquireTokenOnBehalfOf({ oboAssertion: keep(`not-a-token-${randomUUID()}`), scopes }));
    keep((await app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] }))!.accessToken);
    // A code redeemed elsewhere first (AADSTS54005), and an expired one.
    const elsewhere = keep(entra().mintCode({ redirectUri, user }));
    await new ConfidentialClientApplication(config).acquireTokenByCode({ code: elsewhere, redirectUri, scopes });
    await rejectionOf(app.acquireTokenByCode({ code: elsewhere, redirectUri, scopes, binding }));
    await app.getAccountByHomeId(homeAccountId);
    await app.removeAccount(signIn.account!);
    await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes }));
    span.end();
  });

  const metrics = JSON.stringify(await otel.collect());
  const spans = JSON.stringify(
    otel.spans().map((span) => ({
      name: span.name,
      kind: span.kind,
      attributes: span.attributes,
      events: span.events,
      links: span.links,
      status: span.status,
    })),
  );
  // The scan looks at something: every kind of figure and span was exported.
  for (const name of [
    'msal_dc.operation.duration',
    'msal_dc.token_requests',
    'msal_dc.redemptions',
    'msal_dc.cache.lookups',
    'msal_dc.flights',
  ])
    expect(metrics).toContain(`"${name}"`);
  for (const name of ['msal_dc acquire_token_by_code', 'msal_dc token_request', 'msal_dc cache.read', 'msal_dc lock.claim', '"exception"'])
    expect(spans).toContain(name);
  expect(secrets.length).toBeGreaterThan(15);
  const found = secrets.filter((secret) => metrics.includes(secret) || spans.includes(secret));
  expect(found).toEqual([]);
  // Tokens are JWTs: none of their parts either (a header alone is not secret, but a payload or signature would be).
  const jwtParts = secrets.filter((secret) => secret.split('.').length === 3).flatMap((jwt) => jwt.split('.').slice(1));
  expect(jwtParts.filter((part) => metrics.includes(part) || spans.includes(part))).toEqual([]);
});
