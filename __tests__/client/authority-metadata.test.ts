// The authority-metadata cache against the fake Entra ID's real OpenID configuration endpoints:
// one fetch per authority, the least recently used authority is the one dropped when full, the
// app's networkClient carries the request, and a failed fetch is not retried before its backoff.
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { AuthorityMetadataCache } from '../../src/client/authority-metadata';
import { findFreePort } from '../../src/testing';
import { startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId } from '../../src/testing';

/**
 * An app's network client that forwards every request to another origin (as a proxy would): to
 * `target`, or, while `target` is undefined, to a port nothing listens on (the request fails).
 */
class ForwardingNetworkClient implements INetworkModule {
  readonly requested: string[] = [];
  target: string | undefined;

  constructor(
    private readonly from: string,
    private readonly deadOrigin: string,
  ) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>(url, 'GET', options);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>(url, 'POST', options);
  }

  private async send<T>(url: string, method: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    this.requested.push(url);
    const forwarded = url.replace(this.from, this.target ?? this.deadOrigin);
    const response = await fetch(forwarded, { method, headers: options?.headers ?? {}, ...(options?.body && { body: options.body }) });
    return { status: response.status, headers: Object.fromEntries(response.headers), body: (await response.json()) as T };
  }
}

describe('AuthorityMetadataCache', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(async () => {
    await entra.close();
  });
  const fetches = (): number => entra.requestCount('openid-configuration');

  it('fetches each authority once, and when full drops the least recently used one, not the oldest fetched', async () => {
    const [tenant, common, organizations] = [entra.authority, `${entra.origin}/common`, `${entra.origin}/organizations`];
    const cache = new AuthorityMetadataCache(undefined, 2);
    const before = fetches();

    expect(JSON.parse((await cache.get(tenant))!).token_endpoint).toContain(entra.tenantId);
    await cache.get(common);
    await cache.get(tenant); // a hit: the tenant's authority is now the most recently used
    expect(fetches() - before).toBe(2);

    await cache.get(organizations); // full: drops `common`, the least recently used
    expect(fetches() - before).toBe(3);
    await cache.get(tenant); // still cached
    expect(fetches() - before).toBe(3);
    await cache.get(common); // was dropped: fetched again
    expect(fetches() - before).toBe(4);
  });

  it("fetches through the app's system.networkClient, here the only way to reach the fake", async () => {
    const unreachable = 'https://login.unreachable.invalid';
    const networkClient = new ForwardingNetworkClient(unreachable, `https://127.0.0.1:${await findFreePort()}`);
    networkClient.target = entra.origin;
    const cache = new AuthorityMetadataCache({ networkClient });
    const before = fetches();

    const metadata = await cache.get(`${unreachable}/${entra.tenantId}`);
    expect(JSON.parse(metadata!).token_endpoint).toBe(`${entra.authority}/oauth2/v2.0/token`);
    expect(networkClient.requested).toEqual([`${unreachable}/${entra.tenantId}/v2.0/.well-known/openid-configuration`]);
    expect(fetches() - before).toBe(1);
  });

  it('remembers a failed fetch: no new fetch before the backoff (1 s, doubling, reset by a success); meanwhile it answers at once, so MSAL discovers itself', async () => {
    const unreachable = 'https://login.unreachable.invalid';
    const networkClient = new ForwardingNetworkClient(unreachable, `https://127.0.0.1:${await findFreePort()}`);
    let now = 1_000_000;
    const cache = new AuthorityMetadataCache({ networkClient }, 256, () => now);
    const authority = `${unreachable}/${entra.tenantId}`;
    const attempts = (): number => networkClient.requested.length;

    expect(await cache.get(authority)).toBeUndefined(); // the network is down
    expect(attempts()).toBe(1);
    expect(await cache.get(authority)).toBeUndefined(); // within the backoff: no fetch, no wait
    expect(attempts()).toBe(1);
    now += 999;
    await cache.get(authority);
    expect(attempts()).toBe(1);
    now += 1;
    expect(await cache.get(authority)).toBeUndefined(); // 1 s later: tried again, failed again
    expect(attempts()).toBe(2);
    now += 1_999; // the backoff has doubled
    await cache.get(authority);
    expect(attempts()).toBe(2);

    networkClient.target = entra.origin; // the network is back
    const before = fetches();
    now += 1;
    expect(JSON.parse((await cache.get(authority))!).issuer).toBe(`${entra.authority}/v2.0`);
    expect([attempts(), fetches() - before]).toEqual([3, 1]);
    await cache.get(authority); // cached
    expect(attempts()).toBe(3);

    networkClient.target = undefined; // down again once the metadata is due for a refresh (a day)
    now += 24 * 60 * 60 * 1000;
    expect(await cache.get(authority)).toBeUndefined();
    now += 1_000; // the success reset the backoff to 1 s
    await cache.get(authority);
    expect(attempts()).toBe(5);
  });

  it('gives up on a network client that never answers after 10 s (fake clock), and remembers the failure', async () => {
    // A proxy that accepts connections and never answers; the forwarding client sets no timeout.
    const sockets = new Set<Socket>();
    const hung = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as { port: number };
    const unreachable = 'https://login.unreachable.invalid';
    const networkClient = new ForwardingNetworkClient(unreachable, `https://127.0.0.1:${port}`);
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const cache = new AuthorityMetadataCache({ networkClient });
      let outcome: unknown = 'pending';
      void cache.get(`${unreachable}/${entra.tenantId}`).then((metadata) => (outcome = metadata));
      await jest.advanceTimersByTimeAsync(9_999);
      expect(outcome).toBe('pending');
      await jest.advanceTimersByTimeAsync(1);
      expect(outcome).toBeUndefined();
      expect(await cache.get(`${unreachable}/${entra.tenantId}`)).toBeUndefined(); // remembered: no second hung request
      expect(networkClient.requested).toHaveLength(1);
    } finally {
      jest.useRealTimers();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });
});
