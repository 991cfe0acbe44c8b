// The fake Entra ID's grants: the registered clients and users, single-use authorization codes
// (with PKCE and nonce), refresh tokens and their revocation, and the token endpoint's answer for
// each grant type (authorization_code, refresh_token, client_credentials, on-behalf-of), with
// Entra's error JSON for every refusal. Kept in memory, for one test run.
import { createHash, randomBytes } from 'node:crypto';
import { entraErrorResponse } from '../entra-errors';
import type { AadstsErrorName } from '../entra-errors';
import type { FakeEntraId } from './fake-entra-id';
import { JwtSigner } from './jwt';
import { appTokenResponse, clientInfo, sha256, userTokenResponse } from './tokens';
import type { Issuer } from './tokens';
import { DEFAULT_CLIENT, DEFAULT_USER } from './types';
import type { FakeClient, FakeEntraIdOptions, FakeUser } from './types';

/** What the token endpoint answers: an HTTP status and a JSON body. */
export interface GrantResult {
  status: number;
  body: object;
}

/** The public fields of the fake that the grants read (the switches can change at any time). */
type Owner = Pick<
  FakeEntraId,
  'origin' | 'tenantId' | 'legacyCodeReusedShape' | 'revokeTokensOnCodeReuse' | 'strictRefreshTokenRotation' | 'accessTokenLifetimeSeconds'
>;

type CodeRequest = Parameters<FakeEntraId['mintCode']>[0];

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
  /** Refresh tokens (and access-token hashes) issued from this code, for revocation on reuse. */
  family: Set<string>;
}

interface RefreshGrant {
  clientId: string;
  user: FakeUser;
  scopes: string[];
  /** Every token issued from the same sign-in: revoked together on code or refresh-token reuse. */
  family: Set<string>;
  revoked: boolean;
  /** Exchanged once already (strict rotation refuses it from then on). */
  used: boolean;
}

type Fail = (name: AadstsErrorName, extra?: { errorCodes?: number[]; detail?: string }) => GrantResult;

const scopesOf = (params: URLSearchParams): string[] => (params.get('scope') ?? '').split(' ').filter(Boolean);

export class Grants {
  readonly clients: Map<string, FakeClient>;
  readonly users: FakeUser[];
  readonly signer = new JwtSigner();
  readonly #owner: Owner;
  readonly #clock: { now(): number };
  readonly #codeLifetimeMs: number;
  readonly #issuer: Issuer;
  readonly #codes = new Map<string, CodeGrant>();
  readonly #refreshTokens = new Map<string, RefreshGrant>();
  readonly #revokedAccessTokens = new Set<string>();

  constructor(owner: Owner, options: FakeEntraIdOptions, clock: { now(): number }) {
    this.#owner = owner;
    this.#clock = clock;
    this.clients = new Map((options.clients ?? [DEFAULT_CLIENT]).map((client) => [client.clientId, client]));
    this.users = options.users ?? [DEFAULT_USER];
    this.#codeLifetimeMs = options.codeLifetimeMs ?? 600_000;
    this.#issuer = {
      signer: this.signer,
      origin: owner.origin,
      tenantId: owner.tenantId,
      get accessTokenLifetimeSeconds() {
        return owner.accessTokenLifetimeSeconds; // the owner's, which tests may change at any time
      },
      now: () => clock.now(),
    };
  }

  clientInfo(user: FakeUser): string {
    return clientInfo(user, this.#owner.tenantId);
  }

  mintCode(request: CodeRequest): string {
    const clientId = request.clientId ?? this.clients.keys().next().value!;
    const code = `fake-code.${randomBytes(32).toString('base64url')}`;
    this.#codes.set(code, {
      clientId,
      redirectUri: request.redirectUri,
      user: request.user ?? this.users[0]!,
      scopes: request.scopes ?? ['openid', 'profile', 'offline_access'],
      ...(request.nonce !== undefined && { nonce: request.nonce }),
      ...(request.codeChallenge !== undefined && {
        codeChallenge: request.codeChallenge,
        codeChallengeMethod: request.codeChallengeMethod ?? 'plain',
      }),
      expiresAt: this.#clock.now() + this.#codeLifetimeMs,
      redeemed: false,
      family: new Set(),
    });
    return code;
  }

  isAccessTokenValid(accessToken: string): boolean {
    const claims = this.signer.verify(accessToken);
    return (
      !!claims &&
      !this.#revokedAccessTokens.has(sha256(accessToken)) &&
      typeof claims.exp === 'number' &&
      claims.exp * 1000 > this.#clock.now()
    );
  }

  verifyAccessToken(accessToken: string): Record<string, unknown> | undefined {
    return this.isAccessTokenValid(accessToken) ? this.signer.verify(accessToken) : undefined;
  }

  /** The token endpoint's answer to a (form-encoded) token request of `grantType`. */
  grant(grantType: string, params: URLSearchParams, correlationId: string): GrantResult {
    const fail: Fail = (name, extra = {}) => entraErrorResponse(name, { correlationId, now: this.#clock.now(), ...extra });
    const client = this.clients.get(params.get('client_id') ?? '');
    if (!client) return fail('unknownClient');
    if (params.get('client_secret') !== client.clientSecret) return fail('invalidClientSecret');
    const scopes = scopesOf(params);
    switch (grantType) {
      case 'authorization_code':
        return this.#redeemCode(client, params, fail);
      case 'refresh_token': {
        const refreshToken = params.get('refresh_token') ?? '';
        const grant = this.#refreshTokens.get(refreshToken);
        if (!grant || grant.revoked || grant.clientId !== client.clientId) return fail('invalidRefreshToken');
        if (grant.used && this.#owner.strictRefreshTokenRotation) {
          this.#revokeFamily(grant.family);
          return fail('refreshTokenReused');
        }
        grant.used = true;
        return {
          status: 200,
          body: this.#issueUserTokens(client.clientId, grant.user, scopes.length ? scopes : grant.scopes, grant.family),
        };
      }
      case 'client_credentials':
        return { status: 200, body: appTokenResponse(this.#issuer, client.clientId, scopes) };
      case 'urn:ietf:params:oauth:grant-type:jwt-bearer': {
        if (params.get('requested_token_use') !== 'on_behalf_of')
          return fail('invalidRequest', { detail: "'requested_token_use' must be 'on_behalf_of'." });
        const claims = this.verifyAccessToken(params.get('assertion') ?? '');
        const user = claims && this.users.find((candidate) => candidate.oid === claims.oid);
        if (!user) return fail('invalidAssertion');
        return { status: 200, body: this.#issueUserTokens(client.clientId, user, scopes, undefined) };
      }
      default:
        return fail('invalidRequest', { detail: `Unsupported grant_type '${grantType}'.` });
    }
  }

  #redeemCode(client: FakeClient, params: URLSearchParams, fail: Fail): GrantResult {
    const code = params.get('code');
    if (!code) return fail('invalidRequest', { detail: "'code'" });
    const grant = this.#codes.get(code);
    if (!grant || grant.clientId !== client.clientId) return fail('invalidGrant');
    if (grant.redeemed) {
      if (this.#owner.revokeTokensOnCodeReuse) this.#revokeFamily(grant.family);
      return fail('codeAlreadyRedeemed', this.#owner.legacyCodeReusedShape ? { errorCodes: [70002, 54005] } : {});
    }
    if (grant.expiresAt <= this.#clock.now()) return fail('codeExpired');
    if (params.get('redirect_uri') !== grant.redirectUri) return fail('redirectUriMismatch');
    if (grant.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier') ?? '';
      const expected = grant.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
      if (!verifier || expected !== grant.codeChallenge) return fail('pkceMismatch');
    }
    grant.redeemed = true;
    const requested = scopesOf(params);
    return {
      status: 200,
      body: this.#issueUserTokens(client.clientId, grant.user, requested.length ? requested : grant.scopes, grant.family, grant.nonce),
    };
  }

  #revokeFamily(family: Set<string>): void {
    for (const token of family) {
      const refresh = this.#refreshTokens.get(token);
      if (refresh) refresh.revoked = true;
      else this.#revokedAccessTokens.add(token); // access tokens are kept as hashes
    }
  }

  /** Issues user tokens and remembers the refresh token, in `family` with the access token's hash (a new family when none is given). */
  #issueUserTokens(
    clientId: string,
    user: FakeUser,
    scopes: string[],
    family: Set<string> = new Set(),
    nonce?: string,
  ): Record<string, unknown> {
    const { body, accessToken, refreshToken } = userTokenResponse(this.#issuer, clientId, user, scopes, nonce);
    this.#refreshTokens.set(refreshToken, { clientId, user, scopes, revoked: false, used: false, family });
    family.add(refreshToken);
    family.add(sha256(accessToken));
    return body;
  }
}
