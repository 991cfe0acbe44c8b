// The token cache on a real 3-master Redis Cluster: KeyvRedis over a node-redis cluster client for
// the partitions, RedisLockStore over another cluster client. Each app instance owns its clients,
// as separate processes would.
import { randomUUID } from 'node:crypto';
import { InteractionRequiredAuthError } from '@azure/msal-node';
import { PartitionKey } from '../../src';
import { RedisCluster } from '../../src/testing';
import type { FakeEntraId, FakeUser } from '../../src/testing';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import { clusterAppInstance, connectedClusterClient } from './cluster-clients';
import type { ClusterAppInstance, ClusterClient } from './cluster-clients';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('token cache on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let entra: FakeEntraId;
  let raw: ClusterClient;
  let keyPrefix: string;
  let instances: ClusterAppInstance[];

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    entra = await startFakeEntraId();
    raw = await connectedClusterClient(cluster.rootNodes);
  }, 60_000);
  afterAll(async () => {
    raw?.destroy();
    await entra?.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    keyPrefix = `cluster-cache-${randomUUID()}:`;
    instances = [];
  });
  afterEach(async () => {
    for (const instance of instances.splice(0)) await instance.close();
  });

  async function instance(options: { connectStore?: boolean } = {}): Promise<ClusterAppInstance> {
    const created = await clusterAppInstance(entra, cluster.rootNodes, keyPrefix, options);
    instances.push(created);
    return created;
  }

  const storageKeyOf = (homeAccountId: string): string =>
    `${keyPrefix}cache:{${PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId).hash}}`;

  async function signIn(instance: ClusterAppInstance, user: FakeUser) {
    return instance.app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes });
  }

  it('the cluster has 3 masters serving all 16384 slots', () => {
    expect(raw.masters).toHaveLength(3);
    expect(raw.slots.filter(Boolean)).toHaveLength(16_384);
  });

  it('a sign-in on one instance is served from the cache by another, with no token-endpoint call', async () => {
    const user = addRandomUser(entra);
    const first = await signIn(await instance(), user);
    expect(first.account!.homeAccountId).toBe(entra.homeAccountIdOf(user));
    expect(await raw.exists(storageKeyOf(first.account!.homeAccountId))).toBe(1);

    const callsBefore = entra.tokenCallCount();
    const silent = await (await instance()).app.acquireTokenSilent({ homeAccountId: first.account!.homeAccountId, scopes });
    expect(silent.fromCache).toBe(true);
    expect(silent.accessToken).toBe(first.accessToken);
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it('removeAccount on another instance deletes the partition', async () => {
    const user = addRandomUser(entra);
    const first = await instance();
    const result = await signIn(first, user);
    const storageKey = storageKeyOf(result.account!.homeAccountId);
    expect(await raw.exists(storageKey)).toBe(1);

    const second = await instance();
    await second.app.removeAccount(result.account!);
    expect(await raw.exists(storageKey)).toBe(0);
    expect(await second.app.getAccountByHomeId(result.account!.homeAccountId)).toBeNull();
    await expect(first.app.acquireTokenSilent({ homeAccountId: result.account!.homeAccountId, scopes })).rejects.toBeInstanceOf(
      InteractionRequiredAuthError,
    );
  });

  it('concurrent writers to one partition all survive (10 scopes at once for one user, from 2 instances)', async () => {
    const user = addRandomUser(entra);
    const [a, b] = [await instance(), await instance()];
    let conflicts = 0;
    for (const { cache } of [a, b]) cache.on('cache:conflict', () => conflicts++);
    const { account } = await signIn(a, user);
    const extraScopes = Array.from({ length: 10 }, (_, index) => `https://api${index}.example.test/read`);
    await Promise.all(
      extraScopes.map((scope, index) => (index % 2 ? a : b).app.acquireTokenSilent({ account: account!, scopes: [scope] })),
    );

    const callsBefore = entra.tokenCallCount();
    const reader = await instance();
    for (const scope of extraScopes) {
      expect((await reader.app.acquireTokenSilent({ account: account!, scopes: [scope] })).fromCache).toBe(true);
    }
    expect(entra.tokenCallCount()).toBe(callsBefore);
    expect(conflicts).toBeGreaterThan(0); // the writes really overlapped: every one read the same version
  });

  it('an instance whose cluster client is not connected yet: concurrent first calls wait for slot discovery', async () => {
    const users = Array.from({ length: 10 }, () => addRandomUser(entra));
    const fresh = await instance({ connectStore: false });
    const storeErrors: unknown[] = [];
    fresh.cache.on('store:error', (event) => storeErrors.push(event));
    const results = await Promise.all(users.map((user) => signIn(fresh, user)));
    expect(results.map((result) => result.account!.homeAccountId)).toEqual(users.map((user) => entra.homeAccountIdOf(user)));
    expect(storeErrors).toEqual([]);
    for (const result of results) expect(await raw.exists(storageKeyOf(result.account!.homeAccountId))).toBe(1);
  });
});
