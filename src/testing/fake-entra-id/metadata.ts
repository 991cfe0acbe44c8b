// The fake Entra ID's discovery documents: instance discovery (`/common/discovery/instance`) and
// the tenant's OpenID Connect configuration, in the shape of Entra's, pointing at this fake.
/** Where the fake runs: its public fields of the same names. */
export interface Location {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** `https://127.0.0.1:<port>`. */
  readonly origin: string;
  /** `https://127.0.0.1:<port>/<tenantId>`. */
  readonly authority: string;
  readonly tenantId: string;
}

/** The answer to instance discovery: this host is its own alias, network and cache. */
export function instanceDiscovery(location: Location, url: URL): object {
  return {
    tenant_discovery_endpoint: `${location.authority}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: location.host, preferred_cache: location.host, aliases: [location.host] }],
    requested_authorization_endpoint: url.searchParams.get('authorization_endpoint') ?? undefined,
  };
}

/** The tenant's `/v2.0/.well-known/openid-configuration`. */
export function openIdConfiguration(location: Location): object {
  const base = `${location.origin}/${location.tenantId}`;
  return {
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
  };
}
