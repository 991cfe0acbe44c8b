/**
 * Authority metadata (the OpenID configuration) fetched once per authority and handed to every
 * per-operation MSAL client as `auth.authorityMetadata`, so building a client per operation costs
 * no discovery request (only the endpoints MSAL reads from it are kept: each client parses it).
 * Where MSAL's discovery URL cannot be derived with certainty (ADFS, CIAM, OIDC protocol mode,
 * B2C) or the fetch fails, it returns nothing and MSAL discovers on its own.
 *
 * The request goes the way MSAL's own would: through `system.networkClient` when the app gives
 * one (a proxy agent, say), otherwise through Node's global `fetch`, which is what msal-node 7's
 * default HTTP client uses (so an undici global dispatcher, a proxy one included, applies to both).
 * msal-node 7 has no `proxyUrl` option. A failed fetch is remembered, with exponential backoff, so
 * that calls meanwhile go straight to MSAL instead of each waiting for another fetch to fail.
 */
import type { Configuration } from '@azure/msal-node';
import { LruMap } from '../internal/lru-map';
import { SingleFlight } from '../internal/single-flight';

const REFRESH_AFTER_MS = 24 * 60 * 60 * 1000; // MSAL's own authority-metadata lifetime
// Multi-tenant daemons switch between many tenants' authorities; each entry is a few kilobytes.
export const MAX_AUTHORITIES = 256;
const FETCH_TIMEOUT_MS = 10_000;
/** No new fetch for this long after a failure, doubled after each further failure in a row. */
const FIRST_RETRY_AFTER_MS = 1_000;
const MAX_RETRY_AFTER_MS = 60_000;

type Entry = { metadata: string; fetchedAt: number } | { failuresInARow: number; retryAt: number };

export class AuthorityMetadataCache {
  private readonly entries: LruMap<string, Entry>;
  private readonly inFlight = new SingleFlight<string | undefined>();

  /**
   * @param capacity - authorities kept; the least recently used one is dropped first
   * @param now - the clock (tests move it instead of waiting)
   */
  constructor(
    private readonly system: Configuration['system'],
    capacity = MAX_AUTHORITIES,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new LruMap(capacity);
  }

  /** The metadata JSON for `authority`, or `undefined` to let MSAL discover it itself. */
  async get(authority: string): Promise<string | undefined> {
    const entry = this.entries.get(authority);
    if (entry && 'metadata' in entry && this.now() - entry.fetchedAt < REFRESH_AFTER_MS) return entry.metadata;
    // Failed recently: MSAL discovers on its own (and reports a failure in its terms) until the retry.
    if (entry && 'retryAt' in entry && this.now() < entry.retryAt) return undefined;
    const url = discoveryUrl(authority, this.system);
    if (!url) return undefined;
    return this.inFlight.run(authority, async () => {
      const metadata = await this.fetch(url);
      if (metadata) this.entries.set(authority, { metadata, fetchedAt: this.now() });
      else this.rememberFailure(authority, entry && 'failuresInARow' in entry ? entry.failuresInARow + 1 : 1);
      return metadata;
    }).promise;
  }

  private rememberFailure(authority: string, failuresInARow: number): void {
    const retryAfterMs = Math.min(MAX_RETRY_AFTER_MS, FIRST_RETRY_AFTER_MS * 2 ** (failuresInARow - 1));
    this.entries.set(authority, { failuresInARow, retryAt: this.now() + retryAfterMs });
  }

  private async fetch(url: string): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), FETCH_TIMEOUT_MS).unref();
    });
    const request = this.request(url).catch(() => undefined); // MSAL will try itself and report the failure in its own terms
    try {
      return await Promise.race([request, timeout]); // a network client that ignores the timeout cannot hold every call
    } finally {
      clearTimeout(timer);
    }
  }

  private async request(url: string): Promise<string | undefined> {
    const networkClient = this.system?.networkClient;
    if (networkClient) {
      const response = await networkClient.sendGetRequestAsync<Record<string, unknown>>(url, {}, FETCH_TIMEOUT_MS);
      return response.status === 200 && isMetadata(response.body) ? endpointsOf(response.body) : undefined;
    }
    const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!response.ok) return undefined;
    const body: unknown = await response.json();
    return isMetadata(body) ? endpointsOf(body as Record<string, unknown>) : undefined;
  }
}

/** The fields of the OpenID configuration that MSAL reads from `auth.authorityMetadata`. */
const ENDPOINT_FIELDS = ['authorization_endpoint', 'token_endpoint', 'end_session_endpoint', 'issuer', 'jwks_uri'] as const;

/**
 * The metadata as handed to MSAL: only the fields it reads. Every client parses the JSON once
 * per operation; the whole document (claims and scopes supported, and so on) is three times as
 * long and takes about five times as long to parse.
 */
function endpointsOf(body: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(ENDPOINT_FIELDS.filter((field) => field in body).map((field) => [field, body[field]])));
}

function isMetadata(body: unknown): boolean {
  const record = body as Record<string, unknown> | undefined;
  return (
    typeof record?.token_endpoint === 'string' && typeof record.authorization_endpoint === 'string' && typeof record.issuer === 'string'
  );
}

/** MSAL's discovery URL for Entra-style authorities; `undefined` where MSAL would do otherwise. */
function discoveryUrl(authority: string, system: Configuration['system']): string | undefined {
  if (system?.protocolMode !== undefined && String(system.protocolMode).toUpperCase() !== 'AAD') return undefined;
  let url: URL;
  try {
    url = new URL(authority);
  } catch {
    return undefined;
  }
  const path = url.pathname.toLowerCase();
  if (url.protocol !== 'https:' || path.includes('adfs') || path.includes('b2c_') || url.hostname.endsWith('ciamlogin.com'))
    return undefined;
  const segments = url.pathname.split('/').filter(Boolean);
  if (segments.length !== 1) return undefined;
  return `${url.origin}/${segments[0]}/v2.0/.well-known/openid-configuration`;
}
