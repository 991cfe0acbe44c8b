// Clients of a Redis Cluster for the tests in this folder: node-redis 5 cluster clients (through
// @keyv/redis) and app instances that each own their clients, as separate processes would.
import Keyv from 'keyv';
import KeyvRedis, { createCluster } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from '../../src';
import type { FakeEntraId } from '../../src/testing';

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
  const storeClient = newClusterClient(rootNodes);
  if (options.connectStore !== false) await storeClient.connect();
  const lockClient = await connectedClusterClient(rootNodes);
  const lockStore = new RedisLockStore({ client: lockClient, keyPrefix });
  const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(storeClient) }), lockStore, keyPrefix });
  const app = new DistributedClientApplication(entra.msalConfig(), { cache });
  return {
    app,
    cache,
    lockStore,
    close: async () => {
      await cache.close(); // closes the token store's client and the lock store's subscriber
      lockClient.destroy(); // a client given to RedisLockStore is the caller's to close
      if (storeClient.isOpen) storeClient.destroy(); // only when close() above could not finish
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
