/**
 * Authority metadata (the OpenID configuration) fetched once per authority and handed to every
 * per-operation MSAL client as `auth.authorityMetadata`, so building a client per operation costs
 * no discovery request. Where MSAL's discovery URL cannot be derived with certainty (ADFS, CIAM,
 * OIDC protocol mode, B2C) or the fetch fails, it returns nothing and MSAL discovers on its own.
 */
import type { Configuration } from '@azure/msal-node';
import { LruMap } from '../internal/lru-map';
import { SingleFlight } from '../internal/single-flight';

const REFRESH_AFTER_MS = 24 * 60 * 60 * 1000; // MSAL's own authority-metadata lifetime
// Multi-tenant daemons switch between many tenants' authorities; each entry is a few kilobytes.
const MAX_AUTHORITIES = 256;
const FETCH_TIMEOUT_MS = 10_000;

interface Entry {
  metadata: string;
  fetchedAt: number;
}

export class AuthorityMetadataCache {
  private readonly entries: LruMap<string, Entry>;
  private readonly inFlight = new SingleFlight<string | undefined>();

  /** @param capacity - authorities kept; the least recently used one is dropped first */
  constructor(
    private readonly system: Configuration['system'],
    capacity = MAX_AUTHORITIES,
  ) {
    this.entries = new LruMap(capacity);
  }

  /** The metadata JSON for `authority`, or `undefined` to let MSAL discover it itself. */
  async get(authority: string): Promise<string | undefined> {
    const entry = this.entries.get(authority);
    if (entry && Date.now() - entry.fetchedAt < REFRESH_AFTER_MS) return entry.metadata;
    const url = discoveryUrl(authority, this.system);
    if (!url) return undefined;
    return this.inFlight.run(authority, async () => {
      const metadata = await this.fetch(url);
      if (metadata) this.remember(authority, metadata);
      return metadata;
    }).promise;
  }

  private remember(authority: string, metadata: string): void {
    this.entries.set(authority, { metadata, fetchedAt: Date.now() });
  }

  private async fetch(url: string): Promise<string | undefined> {
    try {
      const networkClient = this.system?.networkClient;
      if (networkClient) {
        const response = await networkClient.sendGetRequestAsync<Record<string, unknown>>(url, {});
        return response.status === 200 && isMetadata(response.body) ? JSON.stringify(response.body) : undefined;
      }
      const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!response.ok) return undefined;
      const body: unknown = await response.json();
      return isMetadata(body) ? JSON.stringify(body) : undefined;
    } catch {
      return undefined; // MSAL will try itself and report the failure in its own terms
    }
  }
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
