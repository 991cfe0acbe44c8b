/**
 * DistributedClientApplication: the methods and request/result types of MSAL's
 * ConfidentialClientApplication, with every operation run in a fresh MSAL client bound to one
 * partition of a DistributedTokenCache. Concurrent users therefore never share an in-memory
 * cache (a singleton ConfidentialClientApplication with a distributed plugin mixes them), and the
 * authority is discovered once for all those clients.
 */
import { ConfidentialClientApplication, InteractionRequiredAuthError } from '@azure/msal-node';
import type {
  AccountInfo,
  AuthenticationResult,
  AuthorizationCodePayload,
  AuthorizationCodeRequest,
  AuthorizationUrlRequest,
  ClientCredentialRequest,
  Configuration,
  ICachePlugin,
  OnBehalfOfRequest,
  SilentFlowRequest,
} from '@azure/msal-node';
import { DistributedTokenCache } from '../cache/distributed-token-cache';
import { PartitionKey } from '../cache/partition-key';
import { ClosedError, InvalidArgumentError } from '../errors';
import { SingleFlight } from '../internal/single-flight';
import { optionalPositiveInteger, requireNonEmptyString, requireObject, requireOneOf } from '../internal/validate';
import { SafeEmitter } from '../events';
import { CodeHasher } from '../redeem/code-hasher';
import { parseOutcome, serializeOutcome } from '../redeem/outcome';
import { RedeemOnce } from '../redeem/redeem-once';
import type { RedeemEvents, RedeemOnceSettings } from '../redeem/redeem-once';
import { AuthorityMetadataCache } from './authority-metadata';

/** Options of {@link DistributedClientApplication}. */
export interface DistributedClientApplicationOptions {
  /** The shared token cache (and its lock store). @defaultValue a new in-memory `DistributedTokenCache` */
  cache?: DistributedTokenCache;
  /** Redeem-once settings. */
  redeem?: RedeemOptions;
}

/** Settings of redeem-once (`acquireTokenByCode`). */
export interface RedeemOptions {
  /**
   * Lease of the instance redeeming a code; renewed while the token request runs. If that
   * instance dies, duplicates get `ERR_REDEMPTION_OUTCOME_UNKNOWN` once it expires.
   * @defaultValue 30000
   */
  leaseMs?: number;
  /** How long a duplicate waits for the redemption in progress. @defaultValue 40000 */
  waitTimeoutMs?: number;
  /** How long outcomes are kept for late duplicates; at least a code's lifetime. @defaultValue 900000 */
  recordTtlMs?: number;
  /**
   * Secret of the keyed hashes that name codes and bindings in the stores; every instance needs
   * the same. @defaultValue derived from the client id and client secret (or certificate thumbprint)
   */
  codeHashKey?: string;
  /**
   * What to do when the lock store cannot be reached: `'fail-closed'` throws
   * `ERR_STORE_UNAVAILABLE` before anything is sent to Entra ID; `'fail-open'` redeems without
   * cross-process protection (emits `redeem:unlocked`; duplicates reaching other instances are
   * then recognised by AADSTS54005). @defaultValue `'fail-closed'`
   */
  lockStoreFailure?: 'fail-closed' | 'fail-open';
}

/** `acquireTokenByCode`'s request, plus an optional `binding` that proves a duplicate is the same sign-in. */
export type DistributedAuthorizationCodeRequest = AuthorizationCodeRequest & {
  /**
   * Proof that a duplicate callback belongs to the same sign-in, for example the session id.
   * Only its keyed hash is stored. Without it, the PKCE `codeVerifier` is the proof; without
   * either, duplicates get `ERR_CODE_ALREADY_REDEEMED`.
   */
  binding?: string;
};

/** `acquireTokenSilent` by `account` (as MSAL) or by `homeAccountId` alone. */
export type DistributedSilentFlowRequest =
  SilentFlowRequest | (Omit<SilentFlowRequest, 'account'> & { homeAccountId: string; account?: undefined });

const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com/common';

/**
 * A confidential client application whose token cache is shared by every instance of the app.
 *
 * @example
 * ```ts
 * const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(url) }) });
 * const app = new DistributedClientApplication({ auth: { clientId, clientSecret, authority } }, { cache });
 * const result = await app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'] });
 * const later = await app.acquireTokenSilent({ homeAccountId: result.account!.homeAccountId, scopes: ['User.Read'] });
 * ```
 */
export class DistributedClientApplication extends SafeEmitter<RedeemEvents> {
  /** The token cache this application reads and writes. */
  readonly cache: DistributedTokenCache;
  private readonly config: Configuration;
  private readonly authorityMetadata: AuthorityMetadataCache;
  private readonly silentFlights = new SingleFlight<AuthenticationResult>();
  private readonly redeemOnce = new RedeemOnce();
  private readonly hasher: CodeHasher;
  private readonly redeemSettings: RedeemOnceSettings;
  private closed = false;

  /**
   * @param config - MSAL's configuration, without `cache.cachePlugin` (this class binds its own)
   * @param options - the shared cache
   * @throws TypeError `ERR_INVALID_ARG_*` for a missing client id or a conflicting cache plugin
   */
  constructor(config: Configuration, options: DistributedClientApplicationOptions = {}) {
    super();
    requireObject(config, 'config');
    requireObject(config.auth, 'config.auth');
    requireNonEmptyString(config.auth.clientId, 'config.auth.clientId', 512);
    if (config.cache?.cachePlugin) {
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_VALUE',
        '"config.cache.cachePlugin" must not be set: DistributedClientApplication binds a partition plugin per operation; pass { cache } in its options instead',
      );
    }
    requireObject(options, 'options');
    if (options.cache !== undefined && !(options.cache instanceof DistributedTokenCache)) {
      throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"options.cache" must be a DistributedTokenCache');
    }
    this.config = config;
    this.cache = options.cache ?? new DistributedTokenCache();
    this.authorityMetadata = new AuthorityMetadataCache(config.system);
    const redeem = options.redeem === undefined ? {} : requireObject(options.redeem, 'options.redeem');
    const leaseMs = optionalPositiveInteger(redeem.leaseMs, 'options.redeem.leaseMs', 30_000);
    this.redeemSettings = {
      leaseMs,
      waitTimeoutMs: optionalPositiveInteger(redeem.waitTimeoutMs, 'options.redeem.waitTimeoutMs', leaseMs + 10_000),
      recordTtlMs: optionalPositiveInteger(redeem.recordTtlMs, 'options.redeem.recordTtlMs', 15 * 60_000),
      lockStoreFailure: requireOneOf(
        redeem.lockStoreFailure,
        'options.redeem.lockStoreFailure',
        ['fail-closed', 'fail-open'],
        'fail-closed',
      ),
    };
    const auth = config.auth;
    const appSecret = auth.clientSecret ?? auth.clientCertificate?.thumbprintSha256 ?? auth.clientCertificate?.thumbprint ?? '';
    this.hasher = new CodeHasher(
      redeem.codeHashKey === undefined
        ? `${auth.clientId}\u0000${appSecret}`
        : requireNonEmptyString(redeem.codeHashKey, 'options.redeem.codeHashKey'),
    );
  }

  /** Codes this process is redeeming right now (for tests and stats; 0 when idle). */
  get redemptionsInFlight(): number {
    return this.redeemOnce.inFlight;
  }

  /** Builds the URL of the authorization request (no cache is involved). */
  async getAuthCodeUrl(request: AuthorizationUrlRequest): Promise<string> {
    this.assertOpen();
    return (await this.buildClient(undefined, request.authority)).getAuthCodeUrl(request);
  }

  /**
   * Redeems an authorization code; the tokens go to the partition of the account that signed in.
   */
  async acquireTokenByCode(
    request: DistributedAuthorizationCodeRequest,
    authCodePayload?: AuthorizationCodePayload,
  ): Promise<AuthenticationResult> {
    this.assertOpen();
    validateCodeRequest(request);
    const { binding, ...msalRequest } = request;
    const codeHash = this.hasher.code(request.code);
    const bindingHash = this.hasher.binding({ codeVerifier: request.codeVerifier, binding });
    const scopes = request.scopes;
    return this.redeemOnce.run(codeHash, bindingHash, {
      lockStore: this.cache.lockStore,
      hasher: this.hasher,
      events: this,
      settings: this.redeemSettings,
      redeem: async () => (await this.clientFor(undefined, request.authority)).client.acquireTokenByCode(msalRequest, authCodePayload),
      silent: (homeAccountId, forceRefresh) =>
        this.acquireTokenSilent({
          homeAccountId,
          scopes,
          forceRefresh,
          ...(request.authority !== undefined && { authority: request.authority }),
        }),
      purge: async (homeAccountId) => {
        const account = await this.getAccountByHomeId(homeAccountId);
        if (account) await this.removeAccount(account);
      },
      outcomes: {
        // Encrypted with the cache's key ring when encryption is on; bound to the code's claim.
        seal: (outcome) => this.cache.sealValue(serializeOutcome(outcome), `claim:{${codeHash}}`),
        open: (stored) => parseOutcome(this.cache.openValue(stored, `claim:{${codeHash}}`)),
      },
      mirror: {
        read: async (hash) => {
          const text = await this.cache.readRecord(`redeemed:{${hash}}`);
          return text === undefined ? undefined : parseOutcome(text);
        },
        write: (hash, outcome) => this.cache.writeRecord(`redeemed:{${hash}}`, serializeOutcome(outcome), this.redeemSettings.recordTtlMs),
      },
    });
  }

  /**
   * Tokens from the account's partition, refreshed with its refresh token when needed.
   * Concurrent identical calls in this process share one call.
   *
   * @throws InteractionRequiredAuthError when the account is not in the cache
   */
  async acquireTokenSilent(request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    this.assertOpen();
    requireObject(request, 'request');
    const homeAccountId = request.account ? request.account.homeAccountId : request.homeAccountId;
    const partition = PartitionKey.forAccount(homeAccountId);
    const run = (): Promise<AuthenticationResult> => this.silent(partition, request);
    if (request.claims || request.extraQueryParameters) return run();
    const key = JSON.stringify([partition.value, [...request.scopes].sort(), request.authority ?? '', !!request.forceRefresh]);
    return this.silentFlights.run(key, run).promise;
  }

  private async silent(partition: PartitionKey, request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    const { client } = await this.clientFor(partition, request.authority);
    const account = request.account ?? (await client.getTokenCache().getAccountByHomeId(partition.homeAccountId!));
    if (!account) {
      throw new InteractionRequiredAuthError(
        'no_account_in_cache',
        `No account with this homeAccountId is in the token cache (partition ${partition.hash}, a hash); sign the user in again`,
      );
    }
    const { homeAccountId: _homeAccountId, ...msalRequest } = request as SilentFlowRequest & { homeAccountId?: string };
    return client.acquireTokenSilent({ ...msalRequest, account });
  }

  /** The app's own token (client credentials), cached per app and tenant. */
  async acquireTokenByClientCredential(request: ClientCredentialRequest): Promise<AuthenticationResult | null> {
    this.assertOpen();
    requireObject(request, 'request');
    const authority = request.authority ?? this.config.auth.authority ?? DEFAULT_AUTHORITY;
    const partition = PartitionKey.forApp(this.config.auth.clientId, tenantOf(authority));
    const { client } = await this.clientFor(partition, request.authority);
    return client.acquireTokenByClientCredential(request);
  }

  /** A token on behalf of the user of an incoming access token, cached per assertion (hashed). */
  async acquireTokenOnBehalfOf(request: OnBehalfOfRequest): Promise<AuthenticationResult | null> {
    this.assertOpen();
    requireObject(request, 'request');
    const partition = PartitionKey.forOnBehalfOf(this.config.auth.clientId, request.oboAssertion);
    const { client } = await this.clientFor(partition, request.authority);
    // MSAL's on-behalf-of flow reads its in-memory cache without asking the plugin first: load it.
    await client.getTokenCache().getAllAccounts();
    return client.acquireTokenOnBehalfOf(request);
  }

  /** The cached account with this homeAccountId, or `null`. */
  async getAccountByHomeId(homeAccountId: string): Promise<AccountInfo | null> {
    this.assertOpen();
    const partition = PartitionKey.forAccount(homeAccountId);
    const { client } = await this.clientFor(partition, undefined);
    return client.getTokenCache().getAccountByHomeId(homeAccountId);
  }

  /** Removes the account and its tokens; the partition is deleted when nothing is left in it. */
  async removeAccount(account: AccountInfo): Promise<void> {
    this.assertOpen();
    requireObject(account, 'account');
    const partition = PartitionKey.forAccount(account.homeAccountId);
    const { client } = await this.clientFor(partition, undefined);
    await client.getTokenCache().removeAccount(account);
  }

  /** Refuses further calls. The cache is not closed: call `cache.close()` when done with it. */
  async close(): Promise<void> {
    this.closed = true;
  }

  /** A fresh MSAL client whose cache is exactly one partition, with discovery already done. */
  private async clientFor(partition: PartitionKey | undefined, requestAuthority: string | undefined) {
    const plugin = this.cache.operationPlugin(partition);
    return { client: await this.buildClient(plugin, requestAuthority), plugin };
  }

  private async buildClient(
    cachePlugin: ICachePlugin | undefined,
    requestAuthority: string | undefined,
  ): Promise<ConfidentialClientApplication> {
    const authority = requestAuthority ?? this.config.auth.authority ?? DEFAULT_AUTHORITY;
    const metadata = this.config.auth.authorityMetadata ? undefined : await this.authorityMetadata.get(authority);
    return new ConfidentialClientApplication({
      ...this.config,
      auth: { ...this.config.auth, authority, ...(metadata !== undefined && { authorityMetadata: metadata }) },
      ...(cachePlugin && { cache: { ...this.config.cache, cachePlugin } }),
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('this DistributedClientApplication is closed; create a new one');
    this.cache.assertOpen();
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

/** Refuses malformed redemption requests before anything is stored or sent. */
function validateCodeRequest(request: DistributedAuthorizationCodeRequest): void {
  requireObject(request, 'request');
  requireNonEmptyString(request.code, 'request.code', 16 * 1024);
  requireNonEmptyString(request.redirectUri, 'request.redirectUri', 4096);
  if (!Array.isArray(request.scopes))
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"request.scopes" must be an array of strings');
  request.scopes.forEach((scope, index) => requireNonEmptyString(scope, `request.scopes[${index}]`, 1024));
  if (request.codeVerifier !== undefined) requireNonEmptyString(request.codeVerifier, 'request.codeVerifier', 1024);
  if (request.binding !== undefined) requireNonEmptyString(request.binding, 'request.binding', 4096);
}
