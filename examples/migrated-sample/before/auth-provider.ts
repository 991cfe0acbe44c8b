/**
 * The token side of the app before the migration, in the shape of msal-node's
 * auth-code-distributed-cache sample (written for this repository, not copied): an `ICacheClient`
 * over the app's node-redis client, an `IPartitionManager` that finds the session's account by
 * reading the session from Redis, and a new `ConfidentialClientApplication` with msal-node's
 * `DistributedCachePlugin` for every request. The migration deletes this file.
 *
 * Left out of the sample: `getMetadata`, which caches the authority's metadata in Redis from
 * hard-coded login.microsoftonline.com URLs (each client here fetches it from the authority).
 */
import { ConfidentialClientApplication, DistributedCachePlugin } from '@azure/msal-node';
import type {
  AuthenticationResult,
  AuthorizationCodePayload,
  AuthorizationCodeRequest,
  AuthorizationUrlRequest,
  Configuration,
  ICacheClient,
  IPartitionManager,
  SilentFlowRequest,
} from '@azure/msal-node';
import type { RedisClient } from '../shared';

/** Reads and writes MSAL's cache as one string per key; like the sample's, it logs Redis errors and answers `''`. */
class RedisCacheClient implements ICacheClient {
  constructor(private readonly redis: RedisClient) {}

  async get(key: string): Promise<string> {
    try {
      return (await this.redis.get(key)) ?? '';
    } catch (error) {
      console.warn(`redis get: ${error instanceof Error ? error.message : String(error)}`);
      return '';
    }
  }

  async set(key: string, value: string): Promise<string> {
    try {
      return (await this.redis.set(key, value)) ?? '';
    } catch (error) {
      console.warn(`redis set: ${error instanceof Error ? error.message : String(error)}`);
      return '';
    }
  }
}

/** The partition is the homeAccountId of the account in the session, read from the session store (connect-redis's `sess:<id>`). */
class SessionPartitionManager implements IPartitionManager {
  constructor(
    private readonly cacheClient: RedisCacheClient,
    private readonly sessionId: string,
  ) {}

  async getKey(): Promise<string> {
    try {
      const session = JSON.parse(await this.cacheClient.get(`sess:${this.sessionId}`)) as { account?: { homeAccountId?: string } };
      return session.account?.homeAccountId ?? ''; // no account yet (signing in): key ""
    } catch {
      return '';
    }
  }

  async extractKey(accountEntity: Parameters<IPartitionManager['extractKey']>[0]): Promise<string> {
    return accountEntity.homeAccountId;
  }
}

export class AuthProvider {
  readonly #msalConfig: Configuration;
  readonly #cacheClient: RedisCacheClient;

  constructor(msalConfig: Configuration, redis: RedisClient) {
    this.#msalConfig = msalConfig;
    this.#cacheClient = new RedisCacheClient(redis);
  }

  /** A client whose cache is the partition of this session's account. */
  #clientFor(sessionId: string): ConfidentialClientApplication {
    return new ConfidentialClientApplication({
      ...this.#msalConfig,
      cache: { cachePlugin: new DistributedCachePlugin(this.#cacheClient, new SessionPartitionManager(this.#cacheClient, sessionId)) },
    });
  }

  authCodeUrl(request: AuthorizationUrlRequest, sessionId: string): Promise<string> {
    return this.#clientFor(sessionId).getAuthCodeUrl(request);
  }

  async tokenByCode(
    request: AuthorizationCodeRequest,
    payload: AuthorizationCodePayload,
    sessionId: string,
  ): Promise<AuthenticationResult> {
    const client = this.#clientFor(sessionId);
    await client.getTokenCache().getAllAccounts(); // makes MSAL read the cache (beforeCacheAccess) first
    return client.acquireTokenByCode(request, payload);
  }

  async tokenSilent(request: SilentFlowRequest, sessionId: string): Promise<AuthenticationResult> {
    const client = this.#clientFor(sessionId);
    await client.getTokenCache().getAllAccounts();
    return client.acquireTokenSilent(request);
  }
}
