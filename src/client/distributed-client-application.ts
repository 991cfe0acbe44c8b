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
  RefreshTokenRequest,
  SilentFlowRequest,
} from '@azure/msal-node';
import { DistributedTokenCache } from '../cache/distributed-token-cache';
import { PartitionKey } from '../cache/partition-key';
import type { PartitionCachePlugin } from '../cache/cache-plugin';
import { accountIdsIn } from '../cache/cache-document';
import { ClosedError, InvalidArgumentError, RedemptionRecordCorruptError } from '../errors';
import { LruMap } from '../internal/lru-map';
import { SingleFlight } from '../internal/single-flight';
import { optionalPositiveInteger, requireNonEmptyString, requireObject, requireOneOf } from '../internal/validate';
import { SafeEmitter } from '../events';
import { CodeHasher, defaultCodeHashSecret } from '../redeem/code-hasher';
import { signOutcome, verifyOutcome } from '../redeem/outcome';
import { RedeemOnce } from '../redeem/redeem-once';
import type { RedeemEvents, RedeemOnceSettings } from '../redeem/redeem-once';
import { AuthorityMetadataCache } from './authority-metadata';
import { silentJoinKey } from './silent-join-key';
import { RedeemingClient } from './redeeming-client';

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
  /**
   * How long a duplicate waits for the redemption in progress: longer than the token request may
   * take (`tokenRequestTimeoutMs`), or duplicates give up (`ERR_LOCK_TIMEOUT`) before it ends.
   * @defaultValue the larger of `leaseMs` and `tokenRequestTimeoutMs`, plus 10000 (40000)
   */
  waitTimeoutMs?: number;
  /**
   * Deadline of the token request that redeems a code, from the moment it is sent. A request
   * still unanswered then has an unknown outcome: the caller and every duplicate get
   * `ERR_REDEMPTION_OUTCOME_UNKNOWN`, the lease is no longer renewed, and `close()` no longer
   * waits for it. @defaultValue 30000
   */
  tokenRequestTimeoutMs?: number;
  /** How long outcomes are kept for late duplicates; at least a code's lifetime. @defaultValue 900000 */
  recordTtlMs?: number;
  /**
   * Secret of the keyed hashes that name codes and bindings in the stores, and of the MACs that
   * authenticate redemption records; every instance needs the same. Set it when the app has only
   * a client assertion (no secret or certificate: the default is then derived from the public
   * client id alone, and a process warning `MSAL_DC_NO_CODE_HASH_KEY` says so), and before
   * rotating the client secret or certificate.
   * @defaultValue derived from the client id and the client secret, or the certificate's private
   *   key (never from its thumbprint, which is public)
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
  | SilentFlowRequest
  | (Omit<SilentFlowRequest, 'account'> & {
      /** The account's `homeAccountId` (`result.account.homeAccountId` at sign-in, kept in the session). */
      homeAccountId: string;
      /** Not with `homeAccountId`. */
      account?: undefined;
    });

const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com/common';
/**
 * Accounts remembered per partition version, least recently used dropped first: the active users'.
 * Each is a few hundred bytes without its ID token; a miss costs one MSAL lookup, as without it.
 */
const ACCOUNTS_REMEMBERED = 1_000;

/**
 * A confidential client application whose token cache is shared by every instance of the app.
 *
 * It has the methods and request/result types of MSAL's `ConfidentialClientApplication`, and runs
 * every operation in a fresh MSAL client bound to one partition of the {@link DistributedTokenCache}
 * (concurrent users never share an in-memory cache). {@link acquireTokenByCode} redeems each
 * authorization code once across every instance sharing the lock store, and answers duplicates with
 * the first redemption's tokens instead of AADSTS54005. Emits the {@link RedeemEvents}.
 *
 * @example
 * ```ts
 * import Keyv from 'keyv';
 * import KeyvRedis from '@keyv/redis';
 *
 * const cache = new DistributedTokenCache({
 *   store: new Keyv({ store: new KeyvRedis(url) }),
 *   lockStore: new RedisLockStore({ url }), // the same Redis for every instance
 * });
 * const msal = new DistributedClientApplication({ auth: { clientId, clientSecret, authority } }, { cache });
 * msal.on('redeem:refused', ({ reason }) => console.warn(`duplicate callback refused: ${reason}`));
 *
 * const result = await msal.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'], codeVerifier });
 * const later = await msal.acquireTokenSilent({ homeAccountId: result.account!.homeAccountId, scopes: ['User.Read'] });
 * ```
 */
export class DistributedClientApplication extends SafeEmitter<RedeemEvents> {
  /** The token cache this application reads and writes. */
  readonly cache: DistributedTokenCache;
  private readonly config: Configuration;
  private readonly authorityMetadata: AuthorityMetadataCache;
  private readonly silentFlights = new SingleFlight<AuthenticationResult>();
  /** AccountInfo per partition hash, valid only for the partition version it was derived from. */
  private readonly accounts = new LruMap<string, { version: string; account: AccountInfo }>(ACCOUNTS_REMEMBERED);
  private readonly redeemOnce = new RedeemOnce();
  private readonly hasher: CodeHasher;
  private readonly redeemSettings: RedeemOnceSettings;
  /** Calls in flight, which close() waits for. */
  private readonly operations = new Set<Promise<unknown>>();
  private closed = false;

  /**
   * @param config - MSAL's configuration, without `cache.cachePlugin` (this class binds its own)
   * @param options - the shared cache and the redeem-once settings
   * @throws InvalidArgumentError (a `TypeError`, `ERR_INVALID_ARG_*`) for a missing client id, a
   *   conflicting cache plugin or a bad option
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
    const tokenRequestTimeoutMs = optionalPositiveInteger(redeem.tokenRequestTimeoutMs, 'options.redeem.tokenRequestTimeoutMs', 30_000);
    this.redeemSettings = {
      leaseMs,
      tokenRequestTimeoutMs,
      // A duplicate outwaits both a dead holder's lease and a live holder's token request.
      waitTimeoutMs: optionalPositiveInteger(
        redeem.waitTimeoutMs,
        'options.redeem.waitTimeoutMs',
        Math.max(leaseMs, tokenRequestTimeoutMs) + 10_000,
      ),
      recordTtlMs: optionalPositiveInteger(redeem.recordTtlMs, 'options.redeem.recordTtlMs', 15 * 60_000),
      lockStoreFailure: requireOneOf(
        redeem.lockStoreFailure,
        'options.redeem.lockStoreFailure',
        ['fail-closed', 'fail-open'],
        'fail-closed',
      ),
    };
    if (redeem.codeHashKey === undefined) {
      const { material, secret } = defaultCodeHashSecret(config.auth);
      if (!secret) warnNoCodeHashSecret();
      this.hasher = new CodeHasher(material);
    } else {
      this.hasher = new CodeHasher(requireNonEmptyString(redeem.codeHashKey, 'options.redeem.codeHashKey'));
    }
  }

  /** Codes this process is redeeming right now (for tests and stats; 0 when idle). */
  get redemptionsInFlight(): number {
    return this.redeemOnce.inFlight;
  }

  /**
   * Builds the URL of the authorization request (no cache is involved), as MSAL does.
   *
   * @param request - MSAL's `AuthorizationUrlRequest`
   * @returns the `/authorize` URL to redirect the browser to
   * @throws ClosedError after {@link close}
   *
   * @example
   * ```ts
   * import { CryptoProvider } from '@azure/msal-node';
   *
   * const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
   * req.session.pkceVerifier = verifier; // for acquireTokenByCode in the callback
   * res.redirect(await msal.getAuthCodeUrl({ scopes: ['User.Read'], redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256' }));
   * ```
   */
  async getAuthCodeUrl(request: AuthorizationUrlRequest): Promise<string> {
    this.assertOpen();
    return this.track(this.buildClient(undefined, request.authority).then((client) => client.getAuthCodeUrl(request)));
  }

  /**
   * Redeems an authorization code; the tokens go to the partition of the account that signed in.
   *
   * The code is sent to the token endpoint at most once across every instance sharing the lock
   * store. A duplicate (a retry, a browser refresh, a load balancer re-sending the callback) waits
   * for that redemption and gets tokens for the same account from the shared cache, provided it
   * carries the same PKCE `codeVerifier` or `binding`; otherwise an error (see docs/redeem-once.md).
   *
   * @param request - MSAL's `AuthorizationCodeRequest`, plus an optional `binding`
   * @param authCodePayload - as MSAL's (`state`, `client_info`, ... from the redirect)
   * @returns MSAL's `AuthenticationResult`, the same account's for every duplicate with the same proof
   * @throws CodeAlreadyRedeemedError (`ERR_CODE_ALREADY_REDEEMED`) for a duplicate whose proof does
   *   not match, or a code redeemed outside this library
   * @throws CodeExpiredError (`ERR_CODE_EXPIRED`) for an expired code (AADSTS70008)
   * @throws RedemptionOutcomeUnknownError (`ERR_REDEMPTION_OUTCOME_UNKNOWN`) when the token request
   *   got no answer, or its redeemer died: the code is not sent again
   * @throws RedemptionFailedError (`ERR_REDEMPTION_FAILED`) for a duplicate of a failed redemption
   * @throws RedemptionRecordCorruptError (`ERR_REDEMPTION_RECORD_CORRUPT`) for a duplicate whose
   *   redemption record fails its integrity check (edited, or written with another `codeHashKey`)
   * @throws LockTimeoutError (`ERR_LOCK_TIMEOUT`) when the redemption in progress took longer than
   *   `redeem.waitTimeoutMs`
   * @throws StoreUnavailableError (`ERR_STORE_UNAVAILABLE`) when the lock store or token store does
   *   not answer (before anything is sent to Entra ID, with `lockStoreFailure: 'fail-closed'`)
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for a malformed request
   *
   * @example
   * ```ts
   * // The OAuth callback, on any instance, as often as it is sent:
   * const result = await msal.acquireTokenByCode({
   *   code,
   *   redirectUri,
   *   scopes: ['User.Read'],
   *   codeVerifier, // the PKCE verifier of this sign-in: proves that a duplicate belongs to it
   *   // optionally also `binding`: a random value per sign-in kept in the session (not the session
   *   // id, which changes when the session is regenerated at sign-in)
   * });
   * req.session.homeAccountId = result.account!.homeAccountId;
   * ```
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
    const claimKey = `claim:{${codeHash}}`;
    // Its steps call the internal methods: they go on after close() until the redemption ends.
    const redemption = this.redeemOnce.run(codeHash, bindingHash, {
      lockStore: this.cache.lockStore,
      hasher: this.hasher,
      events: this,
      settings: this.redeemSettings,
      redeem: async (onSend) =>
        (
          await this.buildClient(this.cache.operationPlugin(undefined, this.config.auth.clientId), request.authority, onSend)
        ).acquireTokenByCode(msalRequest, authCodePayload),
      silent: (homeAccountId, forceRefresh) =>
        this.silentShared({
          homeAccountId,
          scopes,
          forceRefresh,
          ...(request.authority !== undefined && { authority: request.authority }),
        }),
      purge: async (homeAccountId) => {
        const account = await this.accountByHomeId(homeAccountId);
        if (account) await this.removeFromCache(account);
      },
      // On the cache, where `store:error` is declared and already reported for the token store:
      // one listener sees every store failure, whichever store it was.
      lockStoreError: (error, outcome) => this.cache.safeEmit('store:error', { operation: 'lock', code: error.code, outcome, error }),
      // Every record carries a MAC under the app's secret, bound to its key (then sealed when
      // encryption is on): whoever can write to a store cannot make it name another account.
      outcomes: {
        seal: (outcome) => this.cache.sealValue(signOutcome(outcome, this.hasher, claimKey), claimKey),
        open: (stored) =>
          verifyOutcome(this.cache.openValue(stored, claimKey), this.hasher, claimKey) ?? this.corruptRecord(codeHash, 'lock-store'),
      },
      mirror: {
        read: async (hash) => {
          const text = await this.cache.readRecord(`redeemed:{${hash}}`);
          if (text === undefined) return undefined;
          return verifyOutcome(text, this.hasher, `redeemed:{${hash}}`) ?? this.corruptRecord(hash, 'token-store');
        },
        write: (hash, outcome) =>
          this.cache.writeRecord(
            `redeemed:{${hash}}`,
            signOutcome(outcome, this.hasher, `redeemed:{${hash}}`),
            this.redeemSettings.recordTtlMs,
          ),
      },
    });
    return this.track(redemption);
  }

  /**
   * Tokens from the account's partition, refreshed with its refresh token when needed.
   * Concurrent calls in this process that are equal in every field of the request (scopes in any
   * order; only `correlationId` may differ) share one call. Calls that differ in any other field,
   * such as `authenticationScheme`, `extraParameters` or the proof-of-possession and SSH fields,
   * are never joined.
   *
   * @param request - MSAL's `SilentFlowRequest`, or the same with `homeAccountId` instead of `account`
   * @returns MSAL's `AuthenticationResult`
   * @throws InteractionRequiredAuthError (MSAL's, `errorCode` `no_account_in_cache`) when the
   *   account is not in the cache, and MSAL's own errors when a refresh is refused: sign the user in again
   * @throws StoreUnavailableError when the token store does not answer (with `readFailure: 'throw'`)
   *
   * @example
   * ```ts
   * import { InteractionRequiredAuthError } from '@azure/msal-node';
   *
   * try {
   *   const { accessToken } = await msal.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] });
   *   await fetch('https://graph.microsoft.com/v1.0/me', { headers: { authorization: `Bearer ${accessToken}` } });
   * } catch (error) {
   *   if (error instanceof InteractionRequiredAuthError) res.redirect('/signin');
   *   else throw error;
   * }
   * ```
   */
  async acquireTokenSilent(request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    this.assertOpen();
    return this.track(this.silentShared(request));
  }

  /** acquireTokenSilent without the closed check: redemptions in flight use it after close(). */
  private async silentShared(request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    requireObject(request, 'request');
    const homeAccountId = request.account ? request.account.homeAccountId : request.homeAccountId;
    const partition = this.accountPartition(homeAccountId);
    const run = (): Promise<AuthenticationResult> => this.silent(partition, request);
    const key = silentJoinKey(partition.value, request);
    if (key === undefined) return run();
    const { promise, joined } = this.silentFlights.run(key, run);
    if (!joined || request.correlationId === undefined) return promise;
    // As MSAL's own deduplication does: a joined caller's result carries its own correlation id.
    return promise.then((result) => ({ ...result, correlationId: request.correlationId! }));
  }

  private async silent(partition: PartitionKey, request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    const { client, plugin } = await this.clientFor(partition, request.authority);
    const account = request.account ?? (await this.accountIn(partition, client, plugin));
    if (!account) {
      throw new InteractionRequiredAuthError(
        'no_account_in_cache',
        '', // msal-common's second argument is the correlation id; the message is the third
        `No account with this homeAccountId is in the token cache (partition ${this.cache.partitionHash(partition)}, a hash); sign the user in again`,
      );
    }
    const { homeAccountId: _homeAccountId, ...msalRequest } = request as SilentFlowRequest & { homeAccountId?: string };
    return client.acquireTokenSilent({ ...msalRequest, account });
  }

  /**
   * The account of an account partition. MSAL finds it by deserializing the whole partition, which
   * acquireTokenSilent then does again; the account is a function of the stored contents, so it is
   * derived once per stored version (versions are random per write) and remembered.
   */
  private async accountIn(partition: PartitionKey, client: ConfidentialClientApplication, plugin: PartitionCachePlugin) {
    const snapshot = await plugin.load(); // the operation's one read; MSAL's loads below reuse it
    // Only a version whose contents hold the account (a corrupt record keeps its version but reads as empty).
    const holdsAccount = snapshot !== undefined && accountIdsIn(snapshot.document).includes(partition.homeAccountId!);
    const version = holdsAccount ? snapshot.version : '';
    const known = version === '' ? undefined : this.accounts.get(partition.hash);
    if (known?.version === version) return known.account;
    const account = await client.getTokenCache().getAccountByHomeId(partition.homeAccountId!);
    // Without the ID token and its claims: MSAL's silent flow finds the tokens by the account's ids
    // and takes the result's account and claims from the cache, and the heap keeps no ID tokens.
    if (account && version !== '') {
      const { idToken: _idToken, idTokenClaims: _claims, ...ids } = account;
      this.accounts.set(partition.hash, { version, account: ids });
    }
    return account;
  }

  /**
   * Tokens for a refresh token obtained elsewhere (for example one migrated from another token
   * cache); the result, with its rotated refresh token, is stored in the account's partition, so
   * `acquireTokenSilent` by `homeAccountId` works on every instance afterwards (MSAL's
   * `forceCache` is always set: the account is not in the cache before). Each call sends
   * the refresh token to Entra ID: for tokens already in the cache, use `acquireTokenSilent`.
   *
   * @param request - MSAL's `RefreshTokenRequest`
   * @returns MSAL's `AuthenticationResult` (or `null`, as MSAL)
   * @throws InvalidArgumentError (`ERR_INVALID_ARG_*`) for a missing or empty `refreshToken`
   * @throws MSAL's errors when Entra ID refuses the refresh token (`invalid_grant`: sign the user in again)
   *
   * @example
   * ```ts
   * declare const legacyRefreshToken: string; // from the cache you are migrating from
   * const result = await msal.acquireTokenByRefreshToken({ refreshToken: legacyRefreshToken, scopes: ['User.Read'] });
   * req.session.homeAccountId = result!.account!.homeAccountId; // from now on: acquireTokenSilent
   * ```
   */
  async acquireTokenByRefreshToken(request: RefreshTokenRequest): Promise<AuthenticationResult | null> {
    this.assertOpen();
    requireObject(request, 'request');
    requireNonEmptyString(request.refreshToken, 'request.refreshToken', 16 * 1024);
    // Like a redemption, the partition is the account Entra ID answers for. MSAL stores a refresh
    // result only for an account already in the cache unless forced, and this one is empty.
    return this.track(
      this.clientFor(undefined, request.authority).then(({ client }) =>
        client.acquireTokenByRefreshToken({ ...request, forceCache: true }),
      ),
    );
  }

  /**
   * The app's own token (client credentials), cached per app and tenant and shared by every instance.
   *
   * @param request - MSAL's `ClientCredentialRequest`
   * @returns MSAL's `AuthenticationResult` (or `null`, as MSAL)
   * @throws StoreUnavailableError when the token store does not answer (per `readFailure` / `writeFailure`)
   *
   * @example
   * ```ts
   * const result = await msal.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
   * ```
   */
  async acquireTokenByClientCredential(request: ClientCredentialRequest): Promise<AuthenticationResult | null> {
    this.assertOpen();
    requireObject(request, 'request');
    const authority = this.authorityOf(request.authority);
    const partition = PartitionKey.forApp(this.config.auth.clientId, tenantOf(authority));
    return this.track(this.clientFor(partition, request.authority).then(({ client }) => client.acquireTokenByClientCredential(request)));
  }

  /**
   * A token on behalf of the user of an incoming access token, cached per assertion (hashed).
   *
   * @param request - MSAL's `OnBehalfOfRequest`; `oboAssertion` is the incoming access token
   * @returns MSAL's `AuthenticationResult` (or `null`, as MSAL)
   *
   * @example
   * ```ts
   * const incoming = req.headers.authorization!.slice('Bearer '.length);
   * const result = await msal.acquireTokenOnBehalfOf({ oboAssertion: incoming, scopes: ['https://graph.microsoft.com/User.Read'] });
   * ```
   */
  async acquireTokenOnBehalfOf(request: OnBehalfOfRequest): Promise<AuthenticationResult | null> {
    this.assertOpen();
    requireObject(request, 'request');
    const partition = PartitionKey.forOnBehalfOf(this.config.auth.clientId, request.oboAssertion);
    return this.track(
      this.clientFor(partition, request.authority).then(async ({ client }) => {
        // MSAL's on-behalf-of flow reads its in-memory cache without asking the plugin first: load it.
        await client.getTokenCache().getAllAccounts();
        return client.acquireTokenOnBehalfOf(request);
      }),
    );
  }

  /**
   * The cached account with this homeAccountId, or `null`.
   *
   * @param homeAccountId - MSAL's `AccountInfo.homeAccountId`
   */
  async getAccountByHomeId(homeAccountId: string): Promise<AccountInfo | null> {
    this.assertOpen();
    return this.track(this.accountByHomeId(homeAccountId));
  }

  private async accountByHomeId(homeAccountId: string): Promise<AccountInfo | null> {
    const partition = this.accountPartition(homeAccountId);
    const { client } = await this.clientFor(partition, undefined);
    return client.getTokenCache().getAccountByHomeId(homeAccountId);
  }

  /**
   * Removes the account and its tokens; the partition is deleted when nothing is left in it.
   *
   * @param account - the account, from {@link getAccountByHomeId} or an `AuthenticationResult`
   *
   * @example
   * ```ts
   * // Sign-out: forget the account's tokens on every instance.
   * const account = await msal.getAccountByHomeId(homeAccountId);
   * if (account) await msal.removeAccount(account);
   * ```
   */
  async removeAccount(account: AccountInfo): Promise<void> {
    this.assertOpen();
    requireObject(account, 'account');
    return this.track(this.removeFromCache(account));
  }

  private async removeFromCache(account: AccountInfo): Promise<void> {
    const partition = this.accountPartition(account.homeAccountId);
    const { client } = await this.clientFor(partition, undefined);
    await client.getTokenCache().removeAccount(account);
  }

  /**
   * Does the first-use work at start-up instead of in the first user's request: connects the
   * token store and the lock store ({@link DistributedTokenCache.connect}) and fetches the
   * authority's OpenID configuration, which every call needs. A metadata fetch that fails is left
   * to the first call, where MSAL reports it.
   *
   * @param options - `authorities`: more authorities to prepare (for example other tenants'),
   *   besides the configured one
   * @throws StoreUnavailableError when a store does not answer within its deadline
   * @throws ClosedError after {@link close}
   *
   * @example
   * ```ts
   * await msal.warmUp(); // then start listening: the first sign-in pays no connection or discovery cost
   * app.listen(3000);
   * ```
   */
  async warmUp(options: { authorities?: string[] } = {}): Promise<void> {
    this.assertOpen();
    requireObject(options, 'options');
    const more = options.authorities ?? [];
    if (!Array.isArray(more)) throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"options.authorities" must be an array of URLs');
    const authorities = [
      this.authorityOf(undefined),
      ...more.map((authority, index) => requireNonEmptyString(authority, `options.authorities[${index}]`, 2048)),
    ];
    await this.track(Promise.all([this.cache.connect(), ...authorities.map((authority) => this.metadataFor(authority))]));
  }

  /**
   * Refuses further calls (`ERR_CLOSED`) and resolves once the calls in flight have settled, so
   * that a redemption under way still records its outcome for its duplicates. Each call is bounded
   * by its own deadlines (a duplicate waiting for another instance: `redeem.waitTimeoutMs`).
   * Idempotent. The cache is not closed: call `cache.close()` after this.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.operations]);
  }

  /** The partition of an account for this app: apps with other client ids on the store never share it. */
  private accountPartition(homeAccountId: string): PartitionKey {
    return PartitionKey.forAccount(homeAccountId).forClient(this.config.auth.clientId);
  }

  /** A fresh MSAL client whose cache is exactly one partition, with discovery already done. */
  private async clientFor(partition: PartitionKey | undefined, requestAuthority: string | undefined) {
    const plugin = this.cache.operationPlugin(partition, this.config.auth.clientId);
    return { client: await this.buildClient(plugin, requestAuthority), plugin };
  }

  /** `onSend`: the client reports each POST it starts (see {@link RedeemingClient}). */
  private async buildClient(
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

  private authorityOf(requestAuthority: string | undefined): string {
    return requestAuthority ?? this.config.auth.authority ?? DEFAULT_AUTHORITY;
  }

  /** The authority's metadata, fetched once per authority (never rejects); none when configured. */
  private async metadataFor(authority: string): Promise<string | undefined> {
    return this.config.auth.authorityMetadata ? undefined : this.authorityMetadata.get(authority);
  }

  /** A redemption record that failed its integrity check: an event, and an error instead of an identity. */
  private corruptRecord(codeHash: string, store: 'lock-store' | 'token-store'): never {
    this.safeEmit('redeem:corrupt', { codeHash, store });
    throw new RedemptionRecordCorruptError(
      `the stored outcome of this authorization code's redemption (${codeHash.slice(0, 16)}, a keyed hash) failed its integrity check: it was edited, or written with another codeHashKey, so no tokens are returned for it; restart the sign-in from /authorize, and check who can write to the ${store === 'lock-store' ? 'lock store' : 'token store'} (see docs/security.md)`,
    );
  }

  /** Remembers a call in flight until it settles, for close(). */
  private track<T>(operation: Promise<T>): Promise<T> {
    this.operations.add(operation);
    const forget = (): void => void this.operations.delete(operation);
    operation.then(forget, forget);
    return operation;
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('this DistributedClientApplication is closed; create a new one');
    this.cache.assertOpen();
  }
}

let warnedNoCodeHashSecret = false;

/**
 * Once per process: an app with only a client assertion has no secret to derive the hashing key
 * from, so code hashes and record MACs would be computable by anyone who knows the client id.
 */
function warnNoCodeHashSecret(): void {
  if (warnedNoCodeHashSecret) return;
  warnedNoCodeHashSecret = true;
  process.emitWarning(
    'DistributedClientApplication has no client secret or certificate private key to derive redeem.codeHashKey from; set options.redeem.codeHashKey to a random secret shared by every instance (see docs/security.md)',
    { code: 'MSAL_DC_NO_CODE_HASH_KEY' },
  );
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
