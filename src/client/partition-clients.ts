/**
 * MSAL clients bound to one partition: a fresh ConfidentialClientApplication per operation, whose
 * in-memory cache is exactly one partition of the shared cache (concurrent users never share
 * one), with the authority's metadata discovered once for all of them.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Configuration, ICachePlugin } from '@azure/msal-node';
import type { CacheInternals } from '../cache/cache-internals';
import type { PartitionCachePlugin } from '../cache/cache-plugin';
import { PartitionKey } from '../cache/partition-key';
import { InvalidArgumentError } from '../errors';
import { AuthorityMetadataCache } from './authority-metadata';
import { RedeemingClient } from './redeeming-client';

const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com/common';

export class PartitionClients {
  private readonly authorityMetadata: AuthorityMetadataCache;

  constructor(
    private readonly config: Configuration,
    private readonly cache: CacheInternals,
  ) {
    this.authorityMetadata = new AuthorityMetadataCache(config.system);
  }

  get clientId(): string {
    return this.config.auth.clientId;
  }

  /** The partition of an account for this app: apps with other client ids on the store never share it. */
  accountPartition(homeAccountId: string): PartitionKey {
    return PartitionKey.forAccount(homeAccountId).forClient(this.clientId);
  }

  /** The partition of the app's own tokens in the tenant of an authority (client credentials). */
  appPartition(requestAuthority: string | undefined): PartitionKey {
    return PartitionKey.forApp(this.clientId, tenantOf(this.authorityOf(requestAuthority)));
  }

  /** A fresh MSAL client whose cache is exactly one partition, with discovery already done. */
  async clientFor(
    partition: PartitionKey | undefined,
    requestAuthority: string | undefined,
  ): Promise<{ client: ConfidentialClientApplication; plugin: PartitionCachePlugin }> {
    const plugin = this.cache.operationPlugin(partition, this.clientId);
    return { client: await this.build(plugin, requestAuthority), plugin };
  }

  /**
   * A client for one redemption: its partition is the account MSAL writes, and it reports each
   * POST it starts through `onSend` (see {@link RedeemingClient}).
   */
  async redeemingClient(requestAuthority: string | undefined, onSend: () => void): Promise<ConfidentialClientApplication> {
    return this.build(this.cache.operationPlugin(undefined, this.clientId), requestAuthority, onSend);
  }

  /** A client with no cache (authorization URLs). */
  async cachelessClient(requestAuthority: string | undefined): Promise<ConfidentialClientApplication> {
    return this.build(undefined, requestAuthority);
  }

  authorityOf(requestAuthority: string | undefined): string {
    return requestAuthority ?? this.config.auth.authority ?? DEFAULT_AUTHORITY;
  }

  /** The authority's metadata, fetched once per authority (never rejects); none when configured. */
  async metadataFor(authority: string): Promise<string | undefined> {
    return this.config.auth.authorityMetadata ? undefined : this.authorityMetadata.get(authority);
  }

  private async build(
    cachePlugin: ICachePlugin | undefined,
    requestAuthority: string | undefined,
    onSend?: () => void,
  ): Promise<ConfidentialClientApplication> {
    const authority = this.authorityOf(requestAuthority);
    const metadata = await this.metadataFor(authority);
    const configuration: Configuration = {
      ...this.config,
      auth: { ...this.config.auth, authority, ...(metadata !== undefined && { authorityMetadata: metadata }) },
      ...(cachePlugin && { cache: { ...this.config.cache, cachePlugin } }),
    };
    return onSend ? new RedeemingClient(configuration, onSend) : new ConfidentialClientApplication(configuration);
  }
}

/** The tenant segment of an authority URL (`common`, `organizations`, a GUID or a domain). */
function tenantOf(authority: string): string {
  try {
    return new URL(authority).pathname.split('/').filter(Boolean)[0] ?? 'common';
  } catch {
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"authority" must be a URL such as https://login.microsoftonline.com/<tenant>`);
  }
}
