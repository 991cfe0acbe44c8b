/**
 * The token operations on an account's partition: silent acquisition (with in-process joining of
 * equal concurrent calls, and the account derived once per stored version), account lookup and
 * removal. Used by the public methods and by redeem-once (to answer duplicates, and to purge
 * tokens Entra ID refused).
 */
import { randomUUID } from 'node:crypto';
import { InteractionRequiredAuthError } from '@azure/msal-node';
import type { AccountInfo, AuthenticationResult, ConfidentialClientApplication, SilentFlowRequest } from '@azure/msal-node';
import { msalJsonOf } from '../cache/cache-plugin';
import type { CacheDocument } from '../cache/cache-document';
import type { Snapshot } from '../cache/partition-repository';
import type { PartitionKey } from '../cache/partition-key';
import { LruMap } from '../internal/lru-map';
import { requireObject } from '../internal/validate';
import { SingleFlight } from '../internal/single-flight';
import { sha256Hex } from '../internal/hash';
import type { TokenFlights } from '../flight/token-flights';
import type { DistributedSilentFlowRequest } from './client-options';
import type { PartitionClients, PartitionRead } from './partition-clients';
import { silentJoinKey } from './silent-join-key';

/**
 * Accounts remembered per partition version, least recently used dropped first: the active users'.
 * Each is a few hundred bytes without its ID token; a miss costs one MSAL lookup, as without it.
 */
const ACCOUNTS_REMEMBERED = 1_000;

/** MSAL's request, whose account is looked up when the caller gave a homeAccountId instead. */
type MsalSilentRequest = Omit<SilentFlowRequest, 'account'> & { account?: AccountInfo };

export class AccountTokens {
  private readonly silentFlights = new SingleFlight<AuthenticationResult>();
  /** AccountInfo per partition hash, valid only for the partition version it was derived from. */
  private readonly accounts = new LruMap<string, { version: string; account: AccountInfo }>(ACCOUNTS_REMEMBERED);

  /**
   * @param clients - MSAL clients bound to partitions
   * @param partitionHash - how the cache names a partition (error messages, flights)
   * @param flights - fleet single flight, for refreshes
   */
  constructor(
    private readonly clients: PartitionClients,
    private readonly partitionHash: (partition: PartitionKey) => string,
    private readonly flights: TokenFlights,
  ) {}

  /**
   * Tokens from the account's partition, refreshed when needed. Concurrent calls in this process
   * that are equal in every field of the request (only `correlationId` may differ) share one call.
   */
  async silent(request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    requireObject(request, 'request');
    const homeAccountId = request.account ? request.account.homeAccountId : request.homeAccountId;
    const partition = this.clients.accountPartition(homeAccountId);
    const run = (): Promise<AuthenticationResult> => this.silentOnce(partition, request);
    const key = silentJoinKey(partition.value, request);
    if (key === undefined) return run();
    const { promise, joined } = this.silentFlights.run(key, run);
    if (!joined || request.correlationId === undefined) return promise;
    // As MSAL's own deduplication does: a joined caller's result carries its own correlation id.
    return promise.then((result) => ({ ...result, correlationId: request.correlationId! }));
  }

  /** The cached account with this homeAccountId, or `null`. */
  async accountByHomeId(homeAccountId: string): Promise<AccountInfo | null> {
    const partition = this.clients.accountPartition(homeAccountId);
    const { client } = await this.clients.clientFor(partition, undefined);
    return client.getTokenCache().getAccountByHomeId(homeAccountId);
  }

  /** Removes the account and its tokens; the partition is deleted when nothing is left in it. */
  async remove(account: AccountInfo): Promise<void> {
    const partition = this.clients.accountPartition(account.homeAccountId);
    const { client } = await this.clients.clientFor(partition, undefined);
    await client.getTokenCache().removeAccount(account);
  }

  /** Removes an account's tokens, if it is in the cache (redeem-once: tokens Entra ID refused). */
  async purge(homeAccountId: string): Promise<void> {
    const account = await this.accountByHomeId(homeAccountId);
    if (account) await this.remove(account);
  }

  /**
   * One silent call: answered from the partition when it can be; otherwise a refresh, sent once for
   * the fleet (see TokenFlights): a caller that waited for another's refresh reads the partition
   * again and takes its tokens, and only the holder sends a refresh token, the newest it read.
   */
  private async silentOnce(partition: PartitionKey, request: DistributedSilentFlowRequest): Promise<AuthenticationResult> {
    const { homeAccountId: _homeAccountId, ...msalRequest } = request as MsalSilentRequest & { homeAccountId?: string };
    const skipCache = request.forceRefresh === true;
    const first = await this.clients.read(partition);
    if (!skipCache) {
      const hit = await this.cacheHit(partition, first.snapshot, msalRequest);
      if (hit) return hit;
    }
    if (!msalRequest.account && !holds(first.snapshot.document, partition.homeAccountId!)) throw this.noAccount(partition);
    // After a refresh another caller made, its tokens answer even a caller that asked for a refresh.
    const { forceRefresh: _forceRefresh, ...afterRefresh } = msalRequest;
    const shape = sha256Hex(silentJoinKey(partition.value, afterRefresh) ?? randomUUID()); // no faithful text: like no other
    const account = `refresh_token\u0000${this.partitionHash(partition)}`;
    return this.flights.run(
      {
        grant: 'refresh_token',
        hash: this.flights.strictRotation ? sha256Hex(account) : sha256Hex(`${account}\u0000${shape}`),
        shape,
        read: () => this.clients.read(partition),
        fromCache: (read, afterFlight) =>
          skipCache && !afterFlight ? Promise.resolve(undefined) : this.cacheHit(partition, read.snapshot, afterRefresh),
        send: (read) => this.refresh(partition, read, msalRequest),
      },
      first,
    );
  }

  /** The silent call in a client bound to the partition as `read` found it: MSAL refreshes what needs it, and writes. */
  private async refresh(partition: PartitionKey, read: PartitionRead, msalRequest: MsalSilentRequest): Promise<AuthenticationResult> {
    const client = await this.clients.clientWith(read.plugin, msalRequest.authority);
    const account = msalRequest.account ?? (await this.accountIn(partition, client, read.snapshot));
    if (!account) throw this.noAccount(partition);
    return client.acquireTokenSilent({ ...msalRequest, account });
  }

  private noAccount(partition: PartitionKey): InteractionRequiredAuthError {
    return new InteractionRequiredAuthError(
      'no_account_in_cache',
      '', // msal-common's second argument is the correlation id; the message is the third
      `No account with this homeAccountId is in the token cache (partition ${this.partitionHash(partition)}, a hash); sign the user in again`,
    );
  }

  /**
   * The call answered from the snapshot alone, in a client that never reaches the network (see
   * CacheOnlyClient), or `undefined` when it needs more: a refresh, any request, an error, no
   * account. The call then runs as before in a client bound to the partition, which reads nothing
   * again (its plugin reuses the snapshot), so whatever it writes, sends or throws is what it
   * would have without this attempt.
   */
  private async cacheHit(
    partition: PartitionKey,
    snapshot: Snapshot,
    msalRequest: MsalSilentRequest,
  ): Promise<AuthenticationResult | undefined> {
    const client = await this.clients.cacheOnlyClient(msalRequest.authority, msalJsonOf(snapshot));
    if (!client) return undefined;
    try {
      const account = msalRequest.account ?? (await this.accountIn(partition, client, snapshot));
      if (!account) return undefined;
      const result = await client.acquireTokenSilent({ ...msalRequest, account });
      return client.wentToNetwork ? undefined : result;
    } catch {
      return undefined; // MSAL's own error comes from the run that follows
    }
  }

  /**
   * The account of an account partition. MSAL finds it by deserializing the whole partition, which
   * acquireTokenSilent then does again; the account is a function of the stored contents, so it is
   * derived once per stored version (versions are random per write) and remembered.
   */
  private async accountIn(partition: PartitionKey, client: ConfidentialClientApplication, snapshot: Snapshot | undefined) {
    // Only a version whose contents hold the account (a corrupt record keeps its version but reads as empty).
    const holdsAccount = snapshot !== undefined && holds(snapshot.document, partition.homeAccountId!);
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
}

/** Whether the document holds the Account entity of `homeAccountId`. */
function holds(document: CacheDocument, homeAccountId: string): boolean {
  for (const key in document.Account) if (document.Account[key]!.home_account_id === homeAccountId) return true;
  return false;
}
