// What the fake Entra ID's token endpoint answers with: signed access and id tokens, refresh tokens
// and `client_info`, in the shape of Entra's v2.0 token responses. Pure: grants.ts keeps the state
// (which refresh tokens exist, which tokens were revoked).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { JwtSigner } from './jwt';
import type { FakeUser } from './types';

/** SHA-256 (hex): how the fake keeps codes and access tokens it must recognise later. */
export const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

/** Who issues the tokens, and when it is. */
export interface Issuer {
  readonly signer: JwtSigner;
  readonly origin: string;
  readonly tenantId: string;
  readonly accessTokenLifetimeSeconds: number;
  now(): number;
}

/** MSAL's `client_info`: the user's `uid` and `utid`, base64url JSON. */
export function clientInfo(user: FakeUser, tenantId: string): string {
  return Buffer.from(JSON.stringify({ uid: user.oid, utid: tenantId })).toString('base64url');
}

/** A token response for `user`: access, id and refresh token. */
export function userTokenResponse(
  issuer: Issuer,
  clientId: string,
  user: FakeUser,
  scopes: string[],
  nonce: string | undefined,
): { body: Record<string, unknown>; accessToken: string; refreshToken: string } {
  const nowSeconds = Math.floor(issuer.now() / 1000);
  const iss = `${issuer.origin}/${issuer.tenantId}/v2.0`;
  const resourceScopes = scopes.filter((scope) => !OIDC_SCOPES.has(scope.toLowerCase()));
  const accessToken = issuer.signer.sign({
    aud: resourceScopes[0]?.includes('/') ? resourceScopes[0].slice(0, resourceScopes[0].lastIndexOf('/')) : clientId,
    iss,
    iat: nowSeconds,
    nbf: nowSeconds,
    exp: nowSeconds + issuer.accessTokenLifetimeSeconds,
    oid: user.oid,
    sub: user.oid,
    tid: issuer.tenantId,
    azp: clientId,
    scp: resourceScopes.map((scope) => scope.slice(scope.lastIndexOf('/') + 1)).join(' '),
    name: user.name,
    preferred_username: user.username,
    jti: randomUUID(),
  });
  const idToken = issuer.signer.sign({
    aud: clientId,
    iss,
    iat: nowSeconds,
    nbf: nowSeconds,
    exp: nowSeconds + 3600,
    name: user.name,
    preferred_username: user.username,
    oid: user.oid,
    sub: user.oid,
    tid: issuer.tenantId,
    ver: '2.0',
    ...(nonce !== undefined && { nonce }),
  });
  const refreshToken = `fake-rt.${randomBytes(32).toString('base64url')}`;
  return {
    accessToken,
    refreshToken,
    body: {
      token_type: 'Bearer',
      scope: (resourceScopes.length ? resourceScopes : ['openid', 'profile']).join(' '),
      expires_in: issuer.accessTokenLifetimeSeconds,
      ext_expires_in: issuer.accessTokenLifetimeSeconds,
      access_token: accessToken,
      refresh_token: refreshToken,
      id_token: idToken,
      client_info: clientInfo(user, issuer.tenantId),
    },
  };
}

/** A client-credentials token response: an app-only access token for the resource of `scopes[0]`. */
export function appTokenResponse(issuer: Issuer, clientId: string, scopes: string[]): Record<string, unknown> {
  const nowSeconds = Math.floor(issuer.now() / 1000);
  const resource = scopes[0] ?? '';
  return {
    token_type: 'Bearer',
    expires_in: issuer.accessTokenLifetimeSeconds,
    ext_expires_in: issuer.accessTokenLifetimeSeconds,
    access_token: issuer.signer.sign({
      aud: resource.replace(/\/\.default$/, ''),
      iss: `${issuer.origin}/${issuer.tenantId}/v2.0`,
      iat: nowSeconds,
      nbf: nowSeconds,
      exp: nowSeconds + issuer.accessTokenLifetimeSeconds,
      azp: clientId,
      oid: clientId,
      tid: issuer.tenantId,
      roles: [],
      jti: randomUUID(),
    }),
  };
}
