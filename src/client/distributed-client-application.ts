/**
 * DistributedClientApplication: the methods and request/result types of MSAL's
 * ConfidentialClientApplication, with every operation run in a fresh MSAL client bound to one
 * partition of a DistributedTokenCache (./partition-clients), silent calls and account operations
 * on the account's partition (./account-tokens), and authorization codes redeemed once
 * (../redeem). This file is the public surface and its reference docs (most of its ~400 lines);
 * the work is done in those.
 */
import { EventEmitter } from 'node:events';
import type {
  AccountInfo,
  AuthenticationResult,
  AuthorizationCodePayload,
  AuthorizationUrlRequest,
  ClientCredentialRequest,
  Configuration,
  OnBehalfOfRequest,
  RefreshTokenRequest,
} from '@azure/msal-node';
import { internalsOf } from '../cache/cache-internals';
import type { CacheInternals } from '../cache/cache-internals';
import { DistributedTokenCache } from '../cache/distributed-token-cache';
import { PartitionKey } from '../cache/partition-key';
import { ClosedError, InvalidArgumentError } from '../errors';
import { sinkOf } from '../events';
import type { ClientEvents } from '../events';
import type { MsalDistributedCacheError } from '../errors';
import { requireNonEmptyString, requireObject } from '../internal/validate';
import type { CodeHasher } from '../redeem/code-hasher';
import { RedeemOnce } from '../redeem/redeem-once';
import type { RedemptionTokens } from '../redeem/redeem-once';
import { RedemptionRecords } from '../redeem/redemption-records';
import { TokenFlights } from '../flight/token-flights';
import { OPERATION } from '../telemetry/names';
import type { OperationVocabulary } from '../telemetry/names';
import { telemetryFrom } from '../telemetry/options';
import type { Telemetry } from '../telemetry/telemetry';
import { TracedLockStore } from '../telemetry/traced-lock-store';
import { AccountTokens } from './account-tokens';
import { AppTokens } from './app-tokens';
import { codeHasherFrom, flightSettingsFrom, redeemSettingsFrom, validateCodeRequest } from './client-options';
import type {
  DistributedAuthorizationCodeRequest,
  DistributedClientApplicationOptions,
  DistributedSilentFlowRequest,
} from './client-options';
import { PartitionClients } from './partition-clients';

export type {
  DistributedAuthorizationCodeRequest,
  DistributedClientApplicationOptions,
  DistributedSilentFlowRequest,
  RedeemOptions,
  SingleFlightOptions,
} from './client-options';

/**
 * A confidential client application whose token cache is shared by every instance of the app.
 *
 * It has the methods and request/result types of MSAL's `ConfidentialClientApplication`, and runs
 * every operation in a fresh MSAL client bound to one partition of the {@link DistributedTokenCache}
 * (concurrent users never share an in-memory cache). {@link acquireTokenByCode} redeems each
 * authorization code once across every instance sharing the lock store, and answers duplicates with
 * the first redemption's tokens instead of AADSTS54005. Emits the {@link RedeemEvents} and the {@link TokenFlightEvents}.
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
export class DistributedClientApplication extends EventEmitter<ClientEvents> {
  /** The token cache this application reads and writes. */
  readonly cache: DistributedTokenCache;
  readonly #cache: CacheInternals;
  readonly #clients: PartitionClients;
  readonly #accounts: AccountTokens;
  readonly #appTokens: AppTokens;
  readonly #hasher: CodeHasher;
  readonly #redeemOnce: RedeemOnce;
  /** Records the operations' metrics and spans (its own, or its cache's); none when off. */
  readonly #telemetry: Telemetry | undefined;
  /** Calls in flight, which close() waits for. */
  readonly #operations = new Set<Promise<unknown>>();
  #closed = false;

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
    const cache = options.cache === undefined ? new DistributedTokenCache() : options.cache;
    this.#cache = internalsOf(cache); // ERR_INVALID_ARG_TYPE for anything but a DistributedTokenCache, null included
    this.cache = cache;
    const telemetry = options.telemetry === undefined ? this.#cache.telemetry : telemetryFrom(options.telemetry, 'options.telemetry');
    this.#telemetry = telemetry;
    this.#clients = new PartitionClients(config, this.#cache, telemetry);
    const settings = redeemSettingsFrom(options.redeem);
    this.#hasher = codeHasherFrom(config.auth, options.redeem);
    // On the cache, where `store:error` is declared and already reported for the token store:
    // one listener sees every store failure, whichever store it was.
    const lockStoreError = (error: MsalDistributedCacheError, outcome: 'thrown' | 'ignored'): void =>
      this.#cache.events('store:error', { operation: 'lock', code: error.code, outcome, error });
    const events = telemetry ? telemetry.tap(sinkOf<ClientEvents>(this)) : sinkOf<ClientEvents>(this);
    const { lockStore } = this.#cache;
    const flights = new TokenFlights({
      lockStore: telemetry ? new TracedLockStore(lockStore, telemetry, 'flight') : lockStore,
      trace: telemetry,
      mac: this.#hasher,
      events,
      lockStoreError,
      settings: flightSettingsFrom(options.singleFlight),
    });
    const partitionHash = (partition: PartitionKey): string => this.cache.partitionHash(partition);
    this.#accounts = new AccountTokens(this.#clients, partitionHash, flights);
    this.#appTokens = new AppTokens(this.#clients, partitionHash, flights);
    this.#redeemOnce = new RedeemOnce({
      lockStore: telemetry ? new TracedLockStore(lockStore, telemetry, 'redemption') : lockStore,
      records: new RedemptionRecords(this.#hasher, this.#cache.values, settings.recordTtlMs),
      events,
      lockStoreError,
      settings,
    });
  }

  /** Codes this process is redeeming right now (for tests and stats; 0 when idle). */
  get redemptionsInFlight(): number {
    return this.#redeemOnce.inFlight;
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
    this.#assertOpen();
    return this.#track(this.#clients.cachelessClient(request.authority).then((client) => client.getAuthCodeUrl(request)));
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
    return this.#run(OPERATION.acquire_token_by_code, () => this.#byCode(request, authCodePayload));
  }

  #byCode(
    request: DistributedAuthorizationCodeRequest,
    authCodePayload: AuthorizationCodePayload | undefined,
  ): Promise<AuthenticationResult> {
    this.#assertOpen();
    validateCodeRequest(request);
    const { binding, ...msalRequest } = request;
    const codeHash = this.#hasher.code(request.code);
    const bindingHash = this.#hasher.binding({ codeVerifier: request.codeVerifier, binding });
    // They go on after close() until the redemption ends (close() waits for it).
    const tokens: RedemptionTokens = {
      redeem: async (onSend) =>
        (await this.#clients.redeemingClient(request.authority, onSend)).acquireTokenByCode(msalRequest, authCodePayload),
      silent: (homeAccountId, forceRefresh) =>
        this.#accounts.silent({
          homeAccountId,
          scopes: request.scopes,
          forceRefresh,
          ...(request.authority !== undefined && { authority: request.authority }),
        }),
      purge: (homeAccountId) => this.#accounts.purge(homeAccountId),
    };
    return this.#redeemOnce.run(codeHash, bindingHash, tokens);
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
    return this.#run(OPERATION.acquire_token_silent, () => {
      this.#assertOpen();
      return this.#accounts.silent(request);
    });
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
    return this.#run(OPERATION.acquire_token_by_refresh_token, () => {
      this.#assertOpen();
      requireObject(request, 'request');
      requireNonEmptyString(request.refreshToken, 'request.refreshToken', 16 * 1024);
      // Like a redemption, the partition is the account Entra ID answers for. MSAL stores a refresh
      // result only for an account already in the cache unless forced, and this one is empty.
      return this.#clients
        .clientFor(undefined, request.authority)
        .then(({ client }) => client.acquireTokenByRefreshToken({ ...request, forceCache: true }));
    });
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
    return this.#run(OPERATION.acquire_token_by_client_credential, () => {
      this.#assertOpen();
      requireObject(request, 'request');
      return this.#appTokens.clientCredential(request);
    });
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
    return this.#run(OPERATION.acquire_token_on_behalf_of, () => {
      this.#assertOpen();
      requireObject(request, 'request');
      return this.#appTokens.onBehalfOf(request);
    });
  }

  /**
   * The cached account with this homeAccountId, or `null`.
   *
   * @param homeAccountId - MSAL's `AccountInfo.homeAccountId`
   */
  async getAccountByHomeId(homeAccountId: string): Promise<AccountInfo | null> {
    return this.#run(OPERATION.get_account_by_home_id, () => {
      this.#assertOpen();
      return this.#accounts.accountByHomeId(homeAccountId);
    });
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
    return this.#run(OPERATION.remove_account, () => {
      this.#assertOpen();
      requireObject(account, 'account');
      return this.#accounts.remove(account);
    });
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
    this.#assertOpen();
    requireObject(options, 'options');
    const more = options.authorities ?? [];
    if (!Array.isArray(more)) throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"options.authorities" must be an array of URLs');
    const authorities = [
      this.#clients.authorityOf(undefined),
      ...more.map((authority, index) => requireNonEmptyString(authority, `options.authorities[${index}]`, 2048)),
    ];
    await this.#track(Promise.all([this.cache.connect(), ...authorities.map((authority) => this.#clients.metadataFor(authority))]));
  }

  /**
   * Refuses further calls (`ERR_CLOSED`) and resolves once the calls in flight have settled, so
   * that a redemption under way still records its outcome for its duplicates. Each call is bounded
   * by its own deadlines (a duplicate waiting for another instance: `redeem.waitTimeoutMs`).
   * Idempotent. The cache is not closed: call `cache.close()` after this.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#operations]);
  }

  /**
   * Runs a public operation (as its span, timed, with telemetry on) and tracks it for close().
   * Without telemetry, `work` runs as the method's own body: what it throws, the method rejects with.
   */
  #run<T>(operation: OperationVocabulary, work: () => Promise<T>): Promise<T> {
    const telemetry = this.#telemetry;
    return this.#track(telemetry ? telemetry.operation(operation, work) : work());
  }

  /** Remembers a call in flight until it settles, for close(). */
  #track<T>(operation: Promise<T>): Promise<T> {
    this.#operations.add(operation);
    const forget = (): void => void this.#operations.delete(operation);
    operation.then(forget, forget);
    return operation;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('this DistributedClientApplication is closed; create a new one');
    this.#cache.assertOpen();
  }
}
