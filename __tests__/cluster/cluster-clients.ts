// Clients of a Redis Cluster for the tests in this folder: node-redis 5 cluster clients (through
// @keyv/redis) and app instances that each own their clients, as separate processes would. The
// process fixture (__tests__/fixtures/app-instance.ts) builds its stores here too.
import Keyv from 'keyv';
import KeyvRedis, { createCluster } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from '../../src';
import type { FakeEntraId } from '../../src/testing';
// The module, not the testing barrel: the process fixture loads this file too.
import { RedisCluster } from '../../src/testing/redis-cluster';

/** A new cluster client; errors surface from the commands, not as unhandled 'error' events. */
export function newClusterClient(rootNodes: { url: string }[]) {
  const client = createCluster({ rootNodes });
  client.on('error', () => undefined);
  return client;
}

export type ClusterClient = ReturnType<typeof newClusterClient>;

/** A cluster client that has discovered the slots. */
export async function connectedClusterClient(rootNodes: { url: string }[]): Promise<ClusterClient> {
  const client = newClusterClient(rootNodes);
  await client.connect();
  return client;
}

/**
 * A Redis Cluster for a describe block and a connected client of it for the tests' own reads and
 * writes: registers a beforeAll that starts both and an afterAll that destroys the client and stops
 * the cluster. Call it in the describe body.
 */
export function useRedisCluster(): {
  /** The describe block's cluster. */
  cluster: () => RedisCluster;
  /** A cluster client that knows the slots, owned by the tests (not by any app instance). */
  raw: () => ClusterClient;
} {
  let cluster: RedisCluster | undefined;
  let raw: ClusterClient | undefined;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
    raw = await connectedClusterClient(cluster.rootNodes);
  }, 60_000);
  afterAll(async () => {
    raw?.destroy();
    await cluster?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useRedisCluster: the cluster starts in beforeAll; use it inside a hook or test');
    return value;
  };
  return { cluster: () => started(cluster), raw: () => started(raw) };
}

/** Root nodes from a comma-separated list of URLs or `host:port` (REDIS_CLUSTER_NODES). */
export function rootNodesFrom(list: string): { url: string }[] {
  const nodes = list.split(',').map((node) => node.trim());
  if (nodes.some((node) => node === '')) throw new Error(`an empty root node in "${list}"`);
  return nodes.map((node) => ({ url: node.includes('://') ? node : `redis://${node}` }));
}

/** The stores of one app instance on a cluster, each over its own cluster client. */
export interface ClusterStores {
  /** The token store: KeyvRedis over a cluster client. */
  store: Keyv;
  /** A RedisLockStore over another cluster client. */
  lockStore: RedisLockStore;
  /** Resolves once the clients have discovered the slots (the token store's only when asked to connect it). */
  connected: Promise<void>;
  /** Destroys the lock store's client, and the token store's if it is still open: after the cache's close(). */
  destroyClients(): void;
}

/**
 * The token store and lock store of one app instance, each over its own cluster client; nothing
 * runs a command before `connected` resolves.
 *
 * @param options.connectStore - connect the token store's cluster client first @defaultValue true
 */
export function clusterStores(rootNodes: { url: string }[], keyPrefix: string, options: { connectStore?: boolean } = {}): ClusterStores {
  const storeClient = newClusterClient(rootNodes);
  const lockClient = newClusterClient(rootNodes);
  const connect = async () => {
    if (options.connectStore !== false) await storeClient.connect();
    await lockClient.connect();
  };
  return {
    store: new Keyv({ store: new KeyvRedis(storeClient) }),
    lockStore: new RedisLockStore({ client: lockClient, keyPrefix }),
    connected: connect(),
    destroyClients: () => {
      lockClient.destroy(); // a client given to RedisLockStore is the caller's to close
      if (storeClient.isOpen) storeClient.destroy(); // only when the cache's close() could not finish
    },
  };
}

export interface ClusterAppInstance {
  app: DistributedClientApplication;
  cache: DistributedTokenCache;
  lockStore: RedisLockStore;
  /** Closes the cache (and with it the token store's cluster client) and the lock store's client. */
  close(): Promise<void>;
}

/**
 * One app instance with its own cluster clients: one under KeyvRedis for the token cache, one for
 * the RedisLockStore.
 *
 * @param options.connectStore - connect the token store's cluster client first @defaultValue true
 */
export async function clusterAppInstance(
  entra: FakeEntraId,
  rootNodes: { url: string }[],
  keyPrefix: string,
  options: { connectStore?: boolean } = {},
): Promise<ClusterAppInstance> {
  const { store, lockStore, connected, destroyClients } = clusterStores(rootNodes, keyPrefix, options);
  await connected;
  const cache = new DistributedTokenCache({ store, lockStore, keyPrefix });
  const app = new DistributedClientApplication(entra.msalConfig(), { cache });
  return {
    app,
    cache,
    lockStore,
    close: async () => {
      await cache.close(); // closes the token store's client and the lock store's subscriber
      destroyClients();
    },
  };
}

/** Every key under `prefix` on every master, with the port of the master that holds it. */
export async function keysOnMasters(client: ClusterClient, prefix: string): Promise<{ key: string; port: number }[]> {
  const found: { key: string; port: number }[] = [];
  for (const master of client.masters) {
    const node = await client.nodeClient(master);
    for (const key of await node.keys(`${prefix}*`)) found.push({ key, port: master.port });
  }
  return found;
}
