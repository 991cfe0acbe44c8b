/**
 * App tokens (client credentials) and on-behalf-of tokens: answered from their partition when it
 * can be, otherwise requested once. Equal concurrent calls in this process share one call (as
 * silent calls do), and the request is sent once for the fleet (see TokenFlights).
 */
import type { AuthenticationResult, ClientCredentialRequest, ConfidentialClientApplication, OnBehalfOfRequest } from '@azure/msal-node';
import { msalJsonOf } from '../cache/cache-plugin';
import { PartitionKey } from '../cache/partition-key';
import type { TokenFlights } from '../flight/token-flights';
import type { FlightGrant } from '../events';
import { canonicalText } from '../internal/canonical-text';
import { sha256Hex } from '../internal/hash';
import { SingleFlight } from '../internal/single-flight';
import type { PartitionClients, PartitionRead } from './partition-clients';

type AppRequest = ClientCredentialRequest | OnBehalfOfRequest;
type Acquire<R extends AppRequest> = (client: ConfidentialClientApplication, request: R) => Promise<AuthenticationResult | null>;

export class AppTokens {
  private readonly joins = new SingleFlight<AuthenticationResult | null>();

  /**
   * @param clients - MSAL clients bound to partitions
   * @param partitionHash - how the cache names a partition (flights are named after it)
   * @param flights - fleet single flight
   */
  constructor(
    private readonly clients: PartitionClients,
    private readonly partitionHash: (partition: PartitionKey) => string,
    private readonly flights: TokenFlights,
  ) {}

  /** The app's token in the tenant of the request's authority. */
  clientCredential(request: ClientCredentialRequest): Promise<AuthenticationResult | null> {
    const partition = this.clients.appPartition(request.authority);
    const { clientAssertion: _clientAssertion, ...shape } = request; // a fresh assertion per call shapes no token
    return this.run('client_credentials', partition, request, shape, (client, r) => client.acquireTokenByClientCredential(r));
  }

  /** A token for the user of `request.oboAssertion` (its partition is named by the assertion's hash). */
  onBehalfOf(request: OnBehalfOfRequest): Promise<AuthenticationResult | null> {
    const partition = PartitionKey.forOnBehalfOf(this.clients.clientId, request.oboAssertion);
    const { oboAssertion: _oboAssertion, ...shape } = request; // in the partition already, as a hash
    return this.run('on_behalf_of', partition, request, shape, async (client, r) => {
      // MSAL's on-behalf-of flow reads its in-memory cache without asking the plugin first: load it.
      await client.getTokenCache().getAllAccounts();
      return client.acquireTokenOnBehalfOf(r);
    });
  }

  /**
   * Joins an equal call in flight here, or makes one: from the cache, else through a flight.
   * `shape` is the request without what cannot change the token; a request with a field that has
   * no faithful text is neither joined nor coordinated.
   */
  private run<R extends AppRequest>(
    grant: FlightGrant,
    partition: PartitionKey,
    request: R,
    shape: Partial<R>,
    acquire: Acquire<R>,
  ): Promise<AuthenticationResult | null> {
    const { correlationId: _correlationId, skipCache: _skipCache, scopes, ...rest } = shape;
    const text = canonicalText([grant, this.partitionHash(partition), Array.isArray(scopes) ? [...scopes].sort() : scopes, rest]);
    if (text === undefined) return this.clients.clientFor(partition, request.authority).then(({ client }) => acquire(client, request));
    const { promise, joined } = this.joins.run(`${text}\u0000${request.skipCache === true}`, () =>
      this.fromCacheOrFlight(grant, sha256Hex(text), partition, request, acquire),
    );
    if (!joined || request.correlationId === undefined) return promise;
    return promise.then((result) => result && { ...result, correlationId: request.correlationId! });
  }

  private async fromCacheOrFlight<R extends AppRequest>(
    grant: FlightGrant,
    hash: string,
    partition: PartitionKey,
    request: R,
    acquire: Acquire<R>,
  ): Promise<AuthenticationResult | null> {
    const skipCache = request.skipCache === true;
    const first = await this.clients.read(partition);
    const fromCache = { ...request, skipCache: false };
    if (!skipCache) {
      const hit = await this.cacheHit(first, fromCache, acquire);
      if (hit) return hit;
    }
    return this.flights.run<PartitionRead, AuthenticationResult | null>(
      {
        grant,
        hash,
        shape: hash, // the flight is per shape already
        read: () => this.clients.read(partition),
        fromCache: (read, afterFlight) =>
          skipCache && !afterFlight ? Promise.resolve(undefined) : this.cacheHit(read, fromCache, acquire),
        send: async (read) => acquire(await this.clients.clientWith(read.plugin, request.authority), request),
      },
      first,
    );
  }

  /** The call answered from `read` alone in a client that never reaches the network, or `undefined`. */
  private async cacheHit<R extends AppRequest>(
    read: PartitionRead,
    request: R,
    acquire: Acquire<R>,
  ): Promise<AuthenticationResult | undefined> {
    const client = await this.clients.cacheOnlyClient(request.authority, msalJsonOf(read.snapshot));
    if (!client) return undefined;
    try {
      const result = await acquire(client, request);
      return client.wentToNetwork || !result ? undefined : result;
    } catch {
      return undefined; // MSAL's own error comes from the request that follows
    }
  }
}
