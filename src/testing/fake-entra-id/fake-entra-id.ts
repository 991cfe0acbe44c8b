// A fake Microsoft Entra ID for tests: HTTPS on loopback, the endpoints MSAL calls, single-use
// authorization codes and Entra's error JSON. The real `@azure/msal-node` talks to it through its
// own HTTP client (global `fetch`), so tests exercise MSAL exactly as production does.
//
// It keeps every grant in memory and is meant for one test run; it is not an identity provider.
// This file is the public class only: its state is in ES private fields, the HTTP side in http.ts,
// the grants in grants.ts (token shapes in tokens.ts, discovery documents in metadata.ts) and the
// test controls in controls.ts.
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { createTestCertificateAuthority } from '../certificates';
import { trustCertificateAuthority } from '../trust';
import { Controls } from './controls';
import { Grants } from './grants';
import { closeServer, listenOnLoopback, serve } from './http';
import { DEFAULT_TENANT } from './types';
import type { FakeEntraIdOptions, FakeFailureKind, FakeGrantType, FakeUser, TokenRequestRecord } from './types';

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
  /** A refresh token is good for one exchange; reuse answers AADSTS70043 and revokes its family (see the option). */
  strictRefreshTokenRotation: boolean;
  /** Delay before the token endpoint answers, in ms; change it at any time. */
  tokenLatencyMs: number;
  /**
   * `expires_in` of the access tokens issued from now on, in seconds; change it at any time (for
   * example below MSAL's 300 s renewal offset for one sign-in, to put its token in the refresh window).
   */
  accessTokenLifetimeSeconds: number;
  /** Every token-endpoint request, in arrival order (also emitted as `'token-request'`). */
  readonly tokenRequests: TokenRequestRecord[] = [];

  readonly #server: Server;
  readonly #controls = new Controls(this.tokenRequests, (record) => this.emit('token-request', record));
  readonly #grants: Grants;

  private constructor(server: Server, port: number, caCertPem: string, options: FakeEntraIdOptions) {
    super();
    this.#server = server;
    this.tenantId = options.tenantId ?? DEFAULT_TENANT;
    this.host = `127.0.0.1:${port}`;
    this.origin = `https://${this.host}`;
    this.authority = `${this.origin}/${this.tenantId}`;
    this.caCertPem = caCertPem;
    this.legacyCodeReusedShape = options.legacyCodeReusedShape ?? false;
    this.revokeTokensOnCodeReuse = options.revokeTokensOnCodeReuse ?? false;
    this.strictRefreshTokenRotation = options.strictRefreshTokenRotation ?? false;
    this.tokenLatencyMs = options.tokenLatencyMs ?? 0;
    this.accessTokenLifetimeSeconds = options.accessTokenLifetimeSeconds ?? 3600;
    this.#grants = new Grants(this, options, this.#controls);
  }

  /**
   * Starts the fake on an ephemeral loopback port.
   *
   * @param options - users, clients, lifetimes and behaviour switches
   * @returns the running server
   */
  static async start(options: FakeEntraIdOptions = {}): Promise<FakeEntraId> {
    const ca = options.certificateAuthority ?? createTestCertificateAuthority();
    const { server, port } = await listenOnLoopback(ca);
    const fake = new FakeEntraId(server, port, ca.certPem, options);
    serve(server, { fake, grants: fake.#grants, controls: fake.#controls });
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
    const clients = this.#grants.clients;
    const client = clientId ? clients.get(clientId) : clients.values().next().value;
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
    return this.#grants.users;
  }

  /** Adds a user (for example one per simulated visitor). */
  addUser(user: FakeUser): void {
    this.#grants.users.push(user);
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
    return this.#grants.mintCode(request);
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
    return this.#controls.tokenCallCount(filter);
  }

  /** Requests served per endpoint: `openid-configuration`, `instance-discovery`, `authorize`, `token`, `keys`, `logout`. */
  requestCount(endpoint: string): number {
    return this.#controls.requestCount(endpoint);
  }

  /** Makes the next `count` token requests (of `grantType`, if given) fail as `kind`. */
  injectFailure(kind: FakeFailureKind, options: { count?: number; grantType?: FakeGrantType } = {}): void {
    this.#controls.injectFailure(kind, options);
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
    return this.#controls.holdTokenResponses();
  }

  /** Moves the fake's clock forward (codes and tokens expire against it). */
  advanceTime(ms: number): void {
    this.#controls.advanceTime(ms);
  }

  /** Whether an access token was issued here, is unexpired and was not revoked. */
  isAccessTokenValid(accessToken: string): boolean {
    return this.#grants.isAccessTokenValid(accessToken);
  }

  /** Verifies an access token issued here and returns its claims. */
  verifyAccessToken(accessToken: string): Record<string, unknown> | undefined {
    return this.#grants.verifyAccessToken(accessToken);
  }

  /** Stops the server and drops open connections. */
  async close(): Promise<void> {
    await closeServer(this.#server);
  }
}
