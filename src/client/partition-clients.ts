/**
 * MSAL clients bound to one partition: a fresh ConfidentialClientApplication per operation, whose
 * in-memory cache is exactly one partition of the shared cache (concurrent users never share
 * one), with the authority's metadata discovered once for all of them.
 */
import { ConfidentialClientApplication, LogLevel } from '@azure/msal-node';
import type { Configuration, ICachePlugin, INetworkModule } from '@azure/msal-node';
import type { CacheInternals } from '../cache/cache-internals';
import type { PartitionCachePlugin } from '../cache/cache-plugin';
import type { Snapshot } from '../cache/partition-repository';
import { PartitionKey } from '../cache/partition-key';
import { InvalidArgumentError } from '../errors';
import { LruMap } from '../internal/lru-map';
import { tracedNetworkClient } from '../telemetry/token-requests';
import type { Telemetry } from '../telemetry/telemetry';
import { AuthorityMetadataCache, MAX_AUTHORITIES } from './authority-metadata';
import { CacheOnlyClient } from './cache-only-client';
import { WatchedClient } from './watched-client';

const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com/common';

/**
 * Account partition keys remembered per homeAccountId (their hash is a SHA-256), least recently
 * used dropped first: the active users'. A few hundred bytes each.
 */
const PARTITION_KEYS_REMEMBERED = 1_000;

/** One read of a partition, with the plugin that made it: a client bound to it starts from that read. */
export interface PartitionRead {
  readonly version: string;
  /** The token store did not answer (and `readFailure: 'miss'` made it an empty partition). */
  readonly unavailable: boolean;
  readonly snapshot: Snapshot;
  readonly plugin: PartitionCachePlugin;
}

export class PartitionClients {
  private readonly authorityMetadata: AuthorityMetadataCache;
  /** What every client is built from: the app's configuration, with MSAL's logging made cheap when it goes nowhere. */
  private readonly base: Configuration;
  /** The configuration of clients for one authority, remade when its metadata changes (once a day); as many as metadata. */
  private readonly configurations = new LruMap<string, { metadata: string | undefined; configuration: Configuration }>(MAX_AUTHORITIES);
  private readonly accountPartitions = new LruMap<string, PartitionKey>(PARTITION_KEYS_REMEMBERED);

  /** With telemetry on: wraps a client's network client so that its token requests are traced. */
  private readonly tracedNetwork: ((inner: INetworkModule) => INetworkModule) | undefined;

  /** @param telemetry - traces the token requests of every client built here (none: nothing is wrapped) */
  constructor(
    private readonly config: Configuration,
    private readonly cache: CacheInternals,
    telemetry?: Telemetry,
  ) {
    this.authorityMetadata = new AuthorityMetadataCache(config.system);
    this.base = withQuietLogger(config);
    this.tracedNetwork = telemetry && ((inner) => tracedNetworkClient(inner, telemetry));
  }

  get clientId(): string {
    return this.config.auth.clientId;
  }

  /** The partition of an account for this app: apps with other client ids on the store never share it. */
  accountPartition(homeAccountId: string): PartitionKey {
    let partition = this.accountPartitions.get(homeAccountId);
    if (partition === undefined) {
      partition = PartitionKey.forAccount(homeAccountId).forClient(this.clientId); // validates homeAccountId
      this.accountPartitions.set(homeAccountId, partition);
    }
    return partition;
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
    const plugin = this.operationPlugin(partition);
    return { client: await this.clientWith(plugin, requestAuthority), plugin };
  }

  /** The cache plugin of one operation on `partition` (it reads the partition once). */
  operationPlugin(partition: PartitionKey | undefined): PartitionCachePlugin {
    return this.cache.operationPlugin(partition, this.clientId);
  }

  /** Reads `partition` now, through a new operation's plugin. */
  async read(partition: PartitionKey): Promise<PartitionRead> {
    const plugin = this.operationPlugin(partition);
    const snapshot = (await plugin.load())!; // a known partition always loads
    return { version: snapshot.version, unavailable: snapshot.unavailable === true, snapshot, plugin };
  }

  /** A fresh MSAL client bound to an operation's plugin, with discovery already done. */
  async clientWith(plugin: PartitionCachePlugin, requestAuthority: string | undefined): Promise<ConfidentialClientApplication> {
    return this.build(plugin, requestAuthority);
  }

  /**
   * A fresh MSAL client holding `json` (a partition as MSAL serializes it) that never reaches the
   * network (see {@link CacheOnlyClient}); `undefined` when MSAL would have to discover the
   * authority over the network first (no metadata known), where it could never answer.
   */
  async cacheOnlyClient(requestAuthority: string | undefined, json: string): Promise<CacheOnlyClient | undefined> {
    const authority = this.authorityOf(requestAuthority);
    const metadata = await this.metadataFor(authority);
    if (metadata === undefined && !this.config.auth.authorityMetadata) return undefined;
    return new CacheOnlyClient(this.configurationFor(authority, metadata), json);
  }

  /**
   * A client for one redemption: its partition is the account MSAL writes, and it reports each
   * POST it starts through `onSend` (see {@link WatchedClient}).
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
    const forAuthority = this.configurationFor(authority, metadata);
    const configuration: Configuration = cachePlugin ? { ...forAuthority, cache: { ...forAuthority.cache, cachePlugin } } : forAuthority;
    const wrap = this.tracedNetwork;
    return onSend || wrap ? new WatchedClient(configuration, { onSend, wrap }) : new ConfidentialClientApplication(configuration);
  }

  /** The configuration of a client for `authority` (MSAL copies it: it is never modified). */
  private configurationFor(authority: string, metadata: string | undefined): Configuration {
    const known = this.configurations.get(authority);
    if (known !== undefined && known.metadata === metadata) return known.configuration;
    const configuration: Configuration = {
      ...this.base,
      auth: { ...this.base.auth, authority, ...(metadata !== undefined && { authorityMetadata: metadata }) },
    };
    this.configurations.set(authority, { metadata, configuration });
    return configuration;
  }
}

/**
 * Without a logger callback, MSAL still formats every log line of its default level (Info: a
 * date and a few strings each, several per call) for a callback that does nothing. Its level is
 * then set to Error: the output is the same (none), and each call costs less.
 */
function withQuietLogger(config: Configuration): Configuration {
  const loggerOptions = config.system?.loggerOptions;
  if (loggerOptions?.loggerCallback) return config;
  return { ...config, system: { ...config.system, loggerOptions: { ...loggerOptions, logLevel: LogLevel.Error } } };
}

/** The tenant segment of an authority URL (`common`, `organizations`, a GUID or a domain). */
function tenantOf(authority: string): string {
  try {
    return new URL(authority).pathname.split('/').filter(Boolean)[0] ?? 'common';
  } catch {
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"authority" must be a URL such as https://login.microsoftonline.com/<tenant>`);
  }
}
