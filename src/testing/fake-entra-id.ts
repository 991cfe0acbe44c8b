/**
 * A fake Microsoft Entra ID for tests: HTTPS on loopback, the endpoints MSAL calls, single-use
 * authorization codes and Entra's error JSON. The real `@azure/msal-node` talks to it through its
 * own HTTP client (global `fetch`), so tests exercise MSAL exactly as production does.
 *
 * It keeps every grant in memory and is meant for one test run; it is not an identity provider.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestCertificateAuthority, issueLoopbackServerCertificate } from './certificates';
import type { CertificateAndKey } from './certificates';
import { entraErrorResponse } from './entra-errors';
import type { AadstsErrorName } from './entra-errors';
import { JwtSigner } from './jwt';
import { trustCertificateAuthority } from './trust';

/** A user the fake signs in. */
export interface FakeUser {
  /** Object id (the `uid` half of MSAL's homeAccountId). */
  oid: string;
  /** Display name (`name` claim). */
  name: string;
  /** Sign-in name (`preferred_username` claim); `/authorize` picks a user by `login_hint`. */
  username: string;
}

/** An application registration. */
export interface FakeClient {
  /** The application (client) id MSAL sends. */
  clientId: string;
  /** The secret the token endpoint expects (`client_secret`). */
  clientSecret: string;
  /** Allowed redirect URIs; any URI is accepted when absent. */
  redirectUris?: string[];
}

/** The grant types the token endpoint serves. */
export type FakeGrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/**
 * A failure the token endpoint injects:
 * - `http500` / `http503`: an error status with an Entra-style body, the grant untouched;
 * - `drop`: the connection is destroyed before the grant is processed;
 * - `redeemThenDrop`: the grant is processed (a code is consumed, tokens issued) and then the
 *   connection is destroyed: the timeout-after-success that makes apps retry;
 * - `hang`: the request is recorded and never answered, the grant untouched (a token endpoint
 *   that stopped answering); the connection stays open until {@link FakeEntraId.close}.
 */
export type FakeFailureKind = 'http500' | 'http503' | 'drop' | 'redeemThenDrop' | 'hang';

/** Options for {@link FakeEntraId.start}. */
export interface FakeEntraIdOptions {
  /** @defaultValue a fixed GUID */
  tenantId?: string;
  /** @defaultValue one client, {@link DEFAULT_CLIENT} */
  clients?: FakeClient[];
  /** The first user is the one `/authorize` signs in without a `login_hint`. @defaultValue one test user */
  users?: FakeUser[];
  /** Lifetime of an authorization code. @defaultValue 600000 (10 minutes, as Entra) */
  codeLifetimeMs?: number;
  /** `expires_in` of access tokens. @defaultValue 3600 */
  accessTokenLifetimeSeconds?: number;
  /** Answer a reused code with the legacy `error_codes: [70002, 54005]`. @defaultValue false */
  legacyCodeReusedShape?: boolean;
  /**
   * Revoke every token issued from a code when the code is presented again (RFC 6749 §4.1.2,
   * as panva's oidc-provider does). @defaultValue false
   */
  revokeTokensOnCodeReuse?: boolean;
  /** Delay before the token endpoint answers. @defaultValue 0 */
  tokenLatencyMs?: number;
  /** The CA that signs the server certificate; a new one is made when absent. */
  certificateAuthority?: CertificateAndKey;
}

/** A token-endpoint request as the fake recorded it (codes and tokens only as SHA-256 hashes). */
export interface TokenRequestRecord {
  /** The `grant_type` sent (see {@link FakeGrantType}), as sent even when unsupported. */
  grantType: string;
  /** The `client_id` sent. */
  clientId: string;
  /** SHA-256 (hex) of the authorization code, for `authorization_code` grants. */
  codeHash?: string;
  /** HTTP status sent, `'dropped'`, or `'unanswered'` (an injected `hang`). */
  outcome: number | 'dropped' | 'unanswered';
  /** When it arrived: epoch ms on the fake's clock (see {@link FakeEntraId.advanceTime}). */
  at: number;
}

/** The client every fake starts with unless `clients` is given. */
export const DEFAULT_CLIENT: FakeClient = { clientId: '00000000-0000-4000-8000-00000000c11e', clientSecret: 'fake-client-secret' };
/** The user every fake starts with unless `users` is given. */
export const DEFAULT_USER: FakeUser = {
  oid: '00000000-0000-4000-8000-0000000a11ce',
  name: 'Alice Example',
  username: 'alice@example.test',
};
const DEFAULT_TENANT = '00000000-0000-4000-8000-000000007e17';

interface CodeGrant {
  clientId: string;
  redirectUri: string;
  user: FakeUser;
  scopes: string[];
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
  expiresAt: number;
  redeemed: boolean;
  /** Refresh tokens issued from this code (for revocation on reuse). */
  family: Set<string>;
}

interface RefreshGrant {
  clientId: string;
  user: FakeUser;
  scopes: string[];
  family?: Set<string>;
  revoked: boolean;
}

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

/**
 * The fake Entra ID server: HTTPS on a loopback port, the endpoints MSAL calls, single-use
 * authorization codes, PKCE, refresh tokens, client credentials and on-behalf-of, Entra's error JSON,
 * and controls for tests (injected failures, a movable clock, counters). Emits `'token-request'`
 * with a {@link TokenRequestRecord} for every token-endpoint request. See docs/testing.md.
 *
 * @example
 * ```ts
 * const entra = await FakeEntraId.start();
 * await entra.trustInThisProcess();
 * const app = new ConfidentialClientApplication(entra.msalConfig());
 * const code = entra.mintCode({ redirectUri: 'https://app.test/callback' });
 * await app.acquireTokenByCode({ code, redirectUri: 'https://app.test/callback', scopes: ['User.Read'] });
 * await entra.close();
 * ```
 *
 * @example
 * A duplicate callback, against this library: one token-endpoint call, two results.
 * ```ts
 * const entra = await FakeEntraId.start();
 * await entra.trustInThisProcess();
 * const msal = new DistributedClientApplication(entra.msalConfig());
 * const code = entra.mintCode({ redirectUri: 'https://app.test/cb' });
 * const request = { code, redirectUri: 'https://app.test/cb', scopes: ['User.Read'], binding: 'session-1' };
 * const [first, duplicate] = await Promise.all([msal.acquireTokenByCode(request), msal.acquireTokenByCode(request)]);
 * console.log(entra.tokenCallCount({ code }), first.account?.homeAccountId === duplicate.account?.homeAccountId); // 1 true
 * await entra.close();
 * ```
 */
export class FakeEntraId extends EventEmitter<{
  /** A token-endpoint request arrived (emitted before it is answered). */
  'token-request': [TokenRequestRecord];
}> {
  /** `https://127.0.0.1:<port>/<tenantId>`: the MSAL authority. */
  readonly authority: string;
  /** `127.0.0.1:<port>`: put it in MSAL's `knownAuthorities`. */
  readonly host: string;
  /** `https://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The tenant id in the authority, the tokens (`tid`) and every homeAccountId. */
  readonly tenantId: string;
  /** PEM of the CA that signed the server certificate: trust it, never disable TLS checks. */
  readonly caCertPem: string;

  /** Answer a reused code with `error_codes: [70002, 54005]` instead of `[54005]`. */
  legacyCodeReusedShape: boolean;
  /** Revoke every token issued from a code when the code is presented again (RFC 6749 §4.1.2). */
  revokeTokensOnCodeReuse: boolean;
  /** Delay before the token endpoint answers, in ms; change it at any time. */
  tokenLatencyMs: number;

  private readonly server: Server;
  private readonly clients: Map<string, FakeClient>;
  private readonly users: FakeUser[];
  private readonly codeLifetimeMs: number;
  private readonly accessTokenLifetimeSeconds: number;
  private readonly signer = new JwtSigner();
  private readonly codes = new Map<string, CodeGrant>();
  private readonly refreshTokens = new Map<string, RefreshGrant>();
  private readonly revokedAccessTokens = new Set<string>();
  private readonly requestCounts = new Map<string, number>();
  private readonly failures: { kind: FakeFailureKind; grantType?: string; remaining: number }[] = [];
  private clockOffsetMs = 0;
  /** Pending while token answers are held (see {@link FakeEntraId.holdTokenResponses}). */
  private held: Promise<void> | undefined;
  /** Every token-endpoint request, in arrival order (also emitted as `'token-request'`). */
  readonly tokenRequests: TokenRequestRecord[] = [];

  private constructor(server: Server, port: number, caCertPem: string, options: FakeEntraIdOptions) {
    super();
    this.server = server;
    this.tenantId = options.tenantId ?? DEFAULT_TENANT;
    this.host = `127.0.0.1:${port}`;
    this.origin = `https://${this.host}`;
    this.authority = `${this.origin}/${this.tenantId}`;
    this.caCertPem = caCertPem;
    this.clients = new Map((options.clients ?? [DEFAULT_CLIENT]).map((client) => [client.clientId, client]));
    this.users = options.users ?? [DEFAULT_USER];
    this.codeLifetimeMs = options.codeLifetimeMs ?? 600_000;
    this.accessTokenLifetimeSeconds = options.accessTokenLifetimeSeconds ?? 3600;
    this.legacyCodeReusedShape = options.legacyCodeReusedShape ?? false;
    this.revokeTokensOnCodeReuse = options.revokeTokensOnCodeReuse ?? false;
    this.tokenLatencyMs = options.tokenLatencyMs ?? 0;
  }

  /**
   * Starts the fake on an ephemeral loopback port.
   *
   * @param options - users, clients, lifetimes and behaviour switches
   * @returns the running server
   */
  static async start(options: FakeEntraIdOptions = {}): Promise<FakeEntraId> {
    const ca = options.certificateAuthority ?? createTestCertificateAuthority();
    const serverCertificate = issueLoopbackServerCertificate(ca);
    const server = createServer({ cert: serverCertificate.certPem, key: serverCertificate.keyPem });
    // Never close idle connections from this side: clients (undici: 4 s) close theirs first, as
    // with the real Entra ID. With Node's default 5 s, a stall of the process that hosts both
    // this fake and its client (GC, a loaded CI machine) lets both timers expire together, and
    // requests go out on sockets the server has just reset: ECONNRESET, as a network_error.
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeEntraId(server, (server.address() as AddressInfo).port, ca.certPem, options);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      fake.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) sendJson(response, 500, { error: 'server_error', error_description: String(error) });
      });
    });
    return fake;
  }

  /**
   * An MSAL configuration for this authority.
   *
   * @param clientId - which registered client @defaultValue the first one
   * @returns `{ auth: { clientId, clientSecret, authority, knownAuthorities } }`, for
   *   `new ConfidentialClientApplication(...)` or `new DistributedClientApplication(...)`
   * @throws Error when no client with this id is registered
   */
  msalConfig(clientId?: string): {
    /** MSAL's `auth` section. */
    auth: {
      /** The client's id. */
      clientId: string;
      /** The client's secret. */
      clientSecret: string;
      /** {@link FakeEntraId.authority}. */
      authority: string;
      /** `[host]`: MSAL then skips Microsoft's instance discovery. */
      knownAuthorities: string[];
    };
  } {
    const client = clientId ? this.clients.get(clientId) : this.clients.values().next().value;
    if (!client) throw new Error(`No client ${clientId} is registered with the fake Entra ID`);
    return {
      auth: { clientId: client.clientId, clientSecret: client.clientSecret, authority: this.authority, knownAuthorities: [this.host] },
    };
  }

  /** Makes this process's global `fetch` (and so MSAL) trust this server's CA. Needs `undici`. */
  trustInThisProcess(): Promise<void> {
    return trustCertificateAuthority(this.caCertPem);
  }

  /** The registered users. */
  get registeredUsers(): readonly FakeUser[] {
    return this.users;
  }

  /** Adds a user (for example one per simulated visitor). */
  addUser(user: FakeUser): void {
    this.users.push(user);
  }

  /** MSAL's homeAccountId for `user`: `<oid>.<tenantId>`. */
  homeAccountIdOf(user: FakeUser): string {
    return `${user.oid}.${this.tenantId}`;
  }

  /**
   * Issues an authorization code as `/authorize` would, without the browser round trip.
   *
   * @returns the raw code (single-use, expires after `codeLifetimeMs`)
   */
  mintCode(request: {
    redirectUri: string;
    clientId?: string;
    user?: FakeUser;
    scopes?: string[];
    nonce?: string;
    codeChallenge?: string;
    codeChallengeMethod?: string;
  }): string {
    const clientId = request.clientId ?? this.clients.keys().next().value!;
    const code = `fake-code.${randomBytes(32).toString('base64url')}`;
    this.codes.set(code, {
      clientId,
      redirectUri: request.redirectUri,
      user: request.user ?? this.users[0]!,
      scopes: request.scopes ?? ['openid', 'profile', 'offline_access'],
      ...(request.nonce !== undefined && { nonce: request.nonce }),
      ...(request.codeChallenge !== undefined && {
        codeChallenge: request.codeChallenge,
        codeChallengeMethod: request.codeChallengeMethod ?? 'plain',
      }),
      expiresAt: this.now() + this.codeLifetimeMs,
      redeemed: false,
      family: new Set(),
    });
    return code;
  }

  /**
   * Follows an authorize URL (from `getAuthCodeUrl`) as a browser would and returns what the
   * redirect carried.
   *
   * @param authorizeUrl - the `/authorize` URL, with `client_id`, `redirect_uri`, and optionally
   *   `login_hint`, `state`, `nonce`, `code_challenge`
   * @returns the code, the `state`, and the whole redirect URL (to send to your callback)
   * @throws Error when `/authorize` refuses (unknown client, redirect URI not registered)
   */
  async authorize(authorizeUrl: string): Promise<{
    /** The authorization code. */
    code: string;
    /** The `state` of the request, echoed. */
    state?: string;
    /** The redirect URI with `code`, `state`, `client_info` and `session_state` in its query. */
    redirectUrl: string;
  }> {
    const response = await fetch(authorizeUrl, { redirect: 'manual' });
    const location = response.headers.get('location');
    if (response.status !== 302 || !location) throw new Error(`/authorize answered ${response.status}: ${await response.text()}`);
    const redirect = new URL(location);
    const code = redirect.searchParams.get('code');
    if (!code) throw new Error(`/authorize redirected without a code: ${redirect.searchParams.get('error_description')}`);
    const state = redirect.searchParams.get('state');
    return { code, ...(state !== null && { state }), redirectUrl: location };
  }

  /**
   * Counts token-endpoint requests, optionally only for one grant type or one code.
   * Dropped and failed requests count: they reached the endpoint.
   */
  tokenCallCount(filter: { grantType?: FakeGrantType; code?: string } = {}): number {
    const codeHash = filter.code === undefined ? undefined : sha256(filter.code);
    return this.tokenRequests.filter(
      (record) =>
        (filter.grantType === undefined || record.grantType === filter.grantType) &&
        (codeHash === undefined || record.codeHash === codeHash),
    ).length;
  }

  /** Requests served per endpoint: `openid-configuration`, `instance-discovery`, `authorize`, `token`, `keys`, `logout`. */
  requestCount(endpoint: string): number {
    return this.requestCounts.get(endpoint) ?? 0;
  }

  /** Makes the next `count` token requests (of `grantType`, if given) fail as `kind`. */
  injectFailure(kind: FakeFailureKind, options: { count?: number; grantType?: FakeGrantType } = {}): void {
    this.failures.push({ kind, remaining: options.count ?? 1, ...(options.grantType !== undefined && { grantType: options.grantType }) });
  }

  /**
   * Holds every token-endpoint answer until the returned function is called: requests arriving
   * meanwhile are recorded and emitted (`'token-request'`) at once, and answered (or failed, as
   * injected) only after the release. For tests that need a redemption in flight while something
   * else happens (a duplicate waiting, a store paused). Releasing twice is harmless.
   *
   * @returns the release function
   *
   * @example
   * ```ts
   * const entra = await FakeEntraId.start();
   * await entra.trustInThisProcess();
   * const msal = new DistributedClientApplication(entra.msalConfig());
   * const code = entra.mintCode({ redirectUri: 'https://app.test/cb' });
   * const release = entra.holdTokenResponses();
   * const first = msal.acquireTokenByCode({ code, redirectUri: 'https://app.test/cb', scopes: ['User.Read'], binding: 'session-1' });
   * await new Promise((resolve) => entra.once('token-request', resolve)); // the request waits at the fake
   * // ... pause a store, start a duplicate ...
   * release();
   * await first;
   * ```
   */
  holdTokenResponses(): () => void {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    this.held = held;
    return () => {
      if (this.held === held) this.held = undefined;
      release();
    };
  }

  /** Moves the fake's clock forward (codes and tokens expire against it). */
  advanceTime(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** Whether an access token was issued here, is unexpired and was not revoked. */
  isAccessTokenValid(accessToken: string): boolean {
    const claims = this.signer.verify(accessToken);
    return (
      !!claims && !this.revokedAccessTokens.has(sha256(accessToken)) && typeof claims.exp === 'number' && claims.exp * 1000 > this.now()
    );
  }

  /** Verifies an access token issued here and returns its claims. */
  verifyAccessToken(accessToken: string): Record<string, unknown> | undefined {
    return this.isAccessTokenValid(accessToken) ? this.signer.verify(accessToken) : undefined;
  }

  /** Stops the server and drops open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  private count(endpoint: string): void {
    this.requestCounts.set(endpoint, this.requestCount(endpoint) + 1);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.origin);
    const segments = url.pathname.split('/').filter(Boolean);
    const path = segments.slice(1).join('/');
    if (url.pathname.startsWith('/common/discovery/instance')) return this.instanceDiscovery(url, response);
    const tenant = segments[0] ?? '';
    if (![this.tenantId, 'common', 'organizations'].includes(tenant))
      return sendJson(response, 400, { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found.` });
    switch (`${request.method} ${path}`) {
      case 'GET v2.0/.well-known/openid-configuration':
        return this.openIdConfiguration(response);
      case 'GET discovery/v2.0/keys':
        this.count('keys');
        return sendJson(response, 200, this.signer.jwks());
      case 'GET oauth2/v2.0/authorize':
        return this.authorizeEndpoint(url, response);
      case 'GET oauth2/v2.0/logout': {
        this.count('logout');
        const target = url.searchParams.get('post_logout_redirect_uri');
        response.writeHead(target ? 302 : 200, target ? { location: target } : { 'content-type': 'text/plain' });
        return void response.end(target ? undefined : 'Signed out');
      }
      case 'POST oauth2/v2.0/token':
        return this.tokenEndpoint(request, response);
      default:
        return sendJson(response, 404, { error: 'not_found', error_description: `No endpoint ${request.method} ${url.pathname}` });
    }
  }

  private instanceDiscovery(url: URL, response: ServerResponse): void {
    this.count('instance-discovery');
    sendJson(response, 200, {
      tenant_discovery_endpoint: `${this.authority}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: this.host, preferred_cache: this.host, aliases: [this.host] }],
      requested_authorization_endpoint: url.searchParams.get('authorization_endpoint') ?? undefined,
    });
  }

  private openIdConfiguration(response: ServerResponse): void {
    this.count('openid-configuration');
    const base = `${this.origin}/${this.tenantId}`;
    sendJson(response, 200, {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['ES256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${base}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'name', 'preferred_username', 'oid', 'tid', 'ver'],
      tenant_region_scope: 'NA',
      cloud_instance_name: 'example.test',
      cloud_graph_host_name: 'graph.example.test',
      msgraph_host: 'graph.example.test',
    });
  }

  private authorizeEndpoint(url: URL, response: ServerResponse): void {
    this.count('authorize');
    const params = url.searchParams;
    const clientId = params.get('client_id') ?? '';
    const redirectUri = params.get('redirect_uri') ?? '';
    const client = this.clients.get(clientId);
    if (!client) return sendText(response, 400, `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`);
    if (!redirectUri || (client.redirectUris && !client.redirectUris.includes(redirectUri))) {
      return sendText(
        response,
        400,
        `AADSTS50011: The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application.`,
      );
    }
    const loginHint = params.get('login_hint');
    const user = (loginHint && this.users.find((candidate) => candidate.username === loginHint)) || this.users[0]!;
    const code = this.mintCode({
      clientId,
      redirectUri,
      user,
      scopes: (params.get('scope') ?? '').split(' ').filter(Boolean),
      ...(params.get('nonce') !== null && { nonce: params.get('nonce')! }),
      ...(params.get('code_challenge') !== null && {
        codeChallenge: params.get('code_challenge')!,
        codeChallengeMethod: params.get('code_challenge_method') ?? 'plain',
      }),
    });
    const answer: Record<string, string> = { code, client_info: this.clientInfo(user), session_state: randomUUID() };
    const state = params.get('state');
    if (state !== null) answer.state = state;
    if (params.get('response_mode') === 'form_post') {
      const inputs = Object.entries(answer)
        .map(([key, value]) => `<input type="hidden" name="${escapeHtml(key)}" value="${escapeHtml(value)}">`)
        .join('');
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void response.end(
        `<!doctype html><html><body onload="document.forms[0].submit()"><form method="POST" action="${escapeHtml(redirectUri)}">${inputs}<noscript><button>Continue</button></noscript></form></body></html>`,
      );
    }
    const target = new URL(redirectUri);
    for (const [key, value] of Object.entries(answer)) target.searchParams.set(key, value);
    response.writeHead(302, { location: target.toString() });
    response.end();
  }

  private async tokenEndpoint(request: IncomingMessage, response: ServerResponse): Promise<void> {
    this.count('token');
    const params = new URLSearchParams(await readBody(request));
    const grantType = params.get('grant_type') ?? '';
    const clientId = params.get('client_id') ?? '';
    const code = params.get('code');
    const record: TokenRequestRecord = {
      grantType,
      clientId,
      outcome: 200,
      at: this.now(),
      ...(code !== null && grantType === 'authorization_code' && { codeHash: sha256(code) }),
    };
    this.tokenRequests.push(record);
    this.emit('token-request', record);
    if (this.held) await this.held;
    // unref'd: a test that kills the caller mid-request must not be kept alive by this timer
    if (this.tokenLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.tokenLatencyMs).unref());

    const failure = this.takeFailure(grantType);
    if (failure === 'hang') {
      record.outcome = 'unanswered';
      return; // close() destroys the connection
    }
    if (failure === 'drop') {
      record.outcome = 'dropped';
      return void request.socket.destroy();
    }
    if (failure === 'http500' || failure === 'http503') {
      record.outcome = failure === 'http500' ? 500 : 503;
      return sendJson(response, record.outcome, {
        error: 'temporarily_unavailable',
        error_description: `AADSTS50196: The server encountered an unexpected error (injected ${failure}).`,
        error_codes: [50196],
        correlation_id: request.headers['client-request-id'] ?? randomUUID(),
      });
    }
    const result = this.grant(grantType, params, String(request.headers['client-request-id'] ?? randomUUID()));
    if (failure === 'redeemThenDrop') {
      record.outcome = 'dropped';
      return void request.socket.destroy();
    }
    record.outcome = result.status;
    sendJson(response, result.status, result.body);
  }

  private takeFailure(grantType: string): FakeFailureKind | undefined {
    const index = this.failures.findIndex((failure) => failure.grantType === undefined || failure.grantType === grantType);
    if (index < 0) return undefined;
    const failure = this.failures[index]!;
    if (--failure.remaining <= 0) this.failures.splice(index, 1);
    return failure.kind;
  }

  private grant(grantType: string, params: URLSearchParams, correlationId: string): { status: number; body: object } {
    const fail = (name: AadstsErrorName, extra: { errorCodes?: number[]; detail?: string } = {}) =>
      entraErrorResponse(name, { correlationId, now: this.now(), ...extra });
    const client = this.clients.get(params.get('client_id') ?? '');
    if (!client) return fail('unknownClient');
    if (params.get('client_secret') !== client.clientSecret) return fail('invalidClientSecret');
    const scopes = (params.get('scope') ?? '').split(' ').filter(Boolean);
    switch (grantType) {
      case 'authorization_code':
        return this.redeemCode(client, params, fail);
      case 'refresh_token': {
        const refreshToken = params.get('refresh_token') ?? '';
        const grant = this.refreshTokens.get(refreshToken);
        if (!grant || grant.revoked || grant.clientId !== client.clientId) return fail('invalidRefreshToken');
        return {
          status: 200,
          body: this.issueUserTokens(client.clientId, grant.user, scopes.length ? scopes : grant.scopes, { family: grant.family }),
        };
      }
      case 'client_credentials':
        return { status: 200, body: this.issueAppToken(client.clientId, scopes) };
      case 'urn:ietf:params:oauth:grant-type:jwt-bearer': {
        if (params.get('requested_token_use') !== 'on_behalf_of')
          return fail('invalidRequest', { detail: "'requested_token_use' must be 'on_behalf_of'." });
        const claims = this.verifyAccessToken(params.get('assertion') ?? '');
        const user = claims && this.users.find((candidate) => candidate.oid === claims.oid);
        if (!user) return fail('invalidAssertion');
        return { status: 200, body: this.issueUserTokens(client.clientId, user, scopes, {}) };
      }
      default:
        return fail('invalidRequest', { detail: `Unsupported grant_type '${grantType}'.` });
    }
  }

  private redeemCode(
    client: FakeClient,
    params: URLSearchParams,
    fail: (name: AadstsErrorName, extra?: { errorCodes?: number[]; detail?: string }) => { status: number; body: object },
  ): { status: number; body: object } {
    const code = params.get('code');
    if (!code) return fail('invalidRequest', { detail: "'code'" });
    const grant = this.codes.get(code);
    if (!grant || grant.clientId !== client.clientId) return fail('invalidGrant');
    if (grant.redeemed) {
      if (this.revokeTokensOnCodeReuse) this.revokeFamily(grant.family);
      return fail('codeAlreadyRedeemed', this.legacyCodeReusedShape ? { errorCodes: [70002, 54005] } : {});
    }
    if (grant.expiresAt <= this.now()) return fail('codeExpired');
    if (params.get('redirect_uri') !== grant.redirectUri) return fail('redirectUriMismatch');
    if (grant.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier') ?? '';
      const expected = grant.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
      if (!verifier || expected !== grant.codeChallenge) return fail('pkceMismatch');
    }
    grant.redeemed = true;
    const requested = (params.get('scope') ?? '').split(' ').filter(Boolean);
    return {
      status: 200,
      body: this.issueUserTokens(client.clientId, grant.user, requested.length ? requested : grant.scopes, {
        family: grant.family,
        ...(grant.nonce !== undefined && { nonce: grant.nonce }),
      }),
    };
  }

  private revokeFamily(family: Set<string>): void {
    for (const token of family) {
      const refresh = this.refreshTokens.get(token);
      if (refresh) refresh.revoked = true;
      else this.revokedAccessTokens.add(token); // access tokens are kept as hashes
    }
  }

  private clientInfo(user: FakeUser): string {
    return Buffer.from(JSON.stringify({ uid: user.oid, utid: this.tenantId })).toString('base64url');
  }

  private issueUserTokens(
    clientId: string,
    user: FakeUser,
    scopes: string[],
    options: { family?: Set<string> | undefined; nonce?: string },
  ): Record<string, unknown> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const issuer = `${this.origin}/${this.tenantId}/v2.0`;
    const resourceScopes = scopes.filter((scope) => !OIDC_SCOPES.has(scope.toLowerCase()));
    const accessToken = this.signer.sign({
      aud: resourceScopes[0]?.includes('/') ? resourceScopes[0].slice(0, resourceScopes[0].lastIndexOf('/')) : clientId,
      iss: issuer,
      iat: nowSeconds,
      nbf: nowSeconds,
      exp: nowSeconds + this.accessTokenLifetimeSeconds,
      oid: user.oid,
      sub: user.oid,
      tid: this.tenantId,
      azp: clientId,
      scp: resourceScopes.map((scope) => scope.slice(scope.lastIndexOf('/') + 1)).join(' '),
      name: user.name,
      preferred_username: user.username,
      jti: randomUUID(),
    });
    const idToken = this.signer.sign({
      aud: clientId,
      iss: issuer,
      iat: nowSeconds,
      nbf: nowSeconds,
      exp: nowSeconds + 3600,
      name: user.name,
      preferred_username: user.username,
      oid: user.oid,
      sub: user.oid,
      tid: this.tenantId,
      ver: '2.0',
      ...(options.nonce !== undefined && { nonce: options.nonce }),
    });
    const refreshToken = `fake-rt.${randomBytes(32).toString('base64url')}`;
    this.refreshTokens.set(refreshToken, { clientId, user, scopes, revoked: false, ...(options.family && { family: options.family }) });
    options.family?.add(refreshToken);
    options.family?.add(sha256(accessToken));
    return {
      token_type: 'Bearer',
      scope: (resourceScopes.length ? resourceScopes : ['openid', 'profile']).join(' '),
      expires_in: this.accessTokenLifetimeSeconds,
      ext_expires_in: this.accessTokenLifetimeSeconds,
      access_token: accessToken,
      refresh_token: refreshToken,
      id_token: idToken,
      client_info: this.clientInfo(user),
    };
  }

  private issueAppToken(clientId: string, scopes: string[]): Record<string, unknown> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const resource = scopes[0] ?? '';
    return {
      token_type: 'Bearer',
      expires_in: this.accessTokenLifetimeSeconds,
      ext_expires_in: this.accessTokenLifetimeSeconds,
      access_token: this.signer.sign({
        aud: resource.replace(/\/\.default$/, ''),
        iss: `${this.origin}/${this.tenantId}/v2.0`,
        iat: nowSeconds,
        nbf: nowSeconds,
        exp: nowSeconds + this.accessTokenLifetimeSeconds,
        azp: clientId,
        oid: clientId,
        tid: this.tenantId,
        roles: [],
        jti: randomUUID(),
      }),
    };
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  response.end(text);
}

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(text);
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
