// The public types of the fake Entra ID: its users and clients, its options, the failures it can
// inject and its record of token-endpoint requests; the default user and client.
import type { CertificateAndKey } from '../certificates';

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
  /** `expires_in` of access tokens: the first value of {@link FakeEntraId.accessTokenLifetimeSeconds}. @defaultValue 3600 */
  accessTokenLifetimeSeconds?: number;
  /** Answer a reused code with the legacy `error_codes: [70002, 54005]`. @defaultValue false */
  legacyCodeReusedShape?: boolean;
  /**
   * Revoke every token issued from a code when the code is presented again (RFC 6749 §4.1.2,
   * as panva's oidc-provider does). @defaultValue false
   */
  revokeTokensOnCodeReuse?: boolean;
  /**
   * Strict refresh-token rotation, as the reuse detection of Auth0, Okta or Keycloak: a refresh
   * token is good for one exchange; presenting it again answers `invalid_grant` (AADSTS70043) and
   * revokes every token of its family. Entra ID itself keeps a superseded refresh token valid.
   * @defaultValue false
   */
  strictRefreshTokenRotation?: boolean;
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
/** The tenant every fake has unless `tenantId` is given. */
export const DEFAULT_TENANT = '00000000-0000-4000-8000-000000007e17';
