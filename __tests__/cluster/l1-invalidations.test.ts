// RedisInvalidations on a real 3-master Redis Cluster: one tracking connection per master,
// coherent only while all of them track, writes on every master announced, and a killed
// connection on one master turning L1 off until all track again.
import { randomUUID } from 'node:crypto';
import KeyvRedis from '@keyv/redis';
import { RedisInvalidations } from '../../src/cache/l1/redis-invalidations';
import type { KeyvRedisLike } from '../../src/cache/redis-partition-store';
import { partitionKeysPrefix, partitionStorageKey } from '../../src/storage-keys';
import { L1Recorder, trackingConnectionIdsIn } from '../helpers/l1-tracking';
import { keysOnMasters, newClusterClient, useRedisCluster } from './cluster-clients';
import type { ClusterClient } from './cluster-clients';

const TIMEOUT_MS = 500;

describe('RedisInvalidations on a Redis Cluster', () => {
  const { cluster, raw } = useRedisCluster();
  let keyPrefix: string;
  let app: ClusterClient;
  let store: KeyvRedis<unknown>;
  let l1: L1Recorder;
  let invalidations: RedisInvalidations;

  beforeEach(async () => {
    keyPrefix = `cluster-l1-${randomUUID()}:`;
    app = newClusterClient(cluster().rootNodes);
    store = new KeyvRedis(app);
    l1 = new L1Recorder();
    invalidations = new RedisInvalidations(store as unknown as KeyvRedisLike, l1, {
      trackedPrefix: partitionKeysPrefix(keyPrefix),
      namespace: undefined,
      timeoutMs: TIMEOUT_MS,
    });
    invalidations.start();
    await app.connect(); // tracking waits for the app's cluster client to know the masters
    await l1.until('coherent:true');
  });
  afterEach(async () => {
    await invalidations.close();
    if (app.isOpen) app.destroy();
  });

  /** The ids of the tracking connections on each master, by port. */
  async function trackingConnections(): Promise<Map<number, string[]>> {
    const found = new Map<number, string[]>();
    for (const master of raw().masters) {
      const node = await raw().nodeClient(master);
      found.set(master.port, trackingConnectionIdsIn(await node.sendCommand(['CLIENT', 'LIST'])));
    }
    return found;
  }

  /** Storage keys spread over every master (fixed hash tags: the slots are fixed), written once and announced. */
  async function keysOnEveryMaster(): Promise<string[]> {
    const keys = Array.from({ length: 12 }, (_, index) => partitionStorageKey(keyPrefix, `tag${index}`));
    const mark = l1.mark;
    for (const key of keys) await raw().set(key, 'x');
    await Promise.all(keys.map((key) => l1.until(`invalidate:${key}`, mark)));
    const ports = new Set((await keysOnMasters(raw(), keyPrefix)).map((found) => found.port));
    expect(ports.size).toBe(3);
    return keys;
  }

  it('one tracking connection per master; no write client (compare-and-set stays on the cluster client)', async () => {
    const connections = await trackingConnections();
    expect([...connections.values()].map((ids) => ids.length)).toEqual([1, 1, 1]);
    expect(invalidations.writeClient()).toBeUndefined();
  });

  it('a write on any master is announced, with exactly its storage key', async () => {
    const keys = await keysOnEveryMaster();
    const mark = l1.mark;
    for (const key of keys) await raw().set(key, 'v2');
    await Promise.all(keys.map((key) => l1.until(`invalidate:${key}`, mark)));
    expect([...l1.since(mark)].sort()).toEqual(keys.map((key) => `invalidate:${key}`).sort());
  });

  it("CLIENT KILL of one master's tracking connection: L1 off first, then on again once every master tracks", async () => {
    const before = await trackingConnections();
    const [port, [killed]] = [...before.entries()][1]! as [number, [string]];
    const master = raw().masters.find((node) => node.port === port)!;
    const mark = l1.mark;
    await (await raw().nodeClient(master)).sendCommand(['CLIENT', 'KILL', 'ID', killed]);
    await l1.until('coherent:true', mark);
    expect(l1.since(mark)).toEqual(['coherent:false', 'coherent:true']);
    const after = await trackingConnections();
    expect([...after.values()].map((ids) => ids.length)).toEqual([1, 1, 1]);
    expect(after.get(port)).not.toContain(killed);

    const keys = await keysOnEveryMaster();
    const afterKill = l1.mark;
    for (const key of keys) await raw().set(key, 'v3');
    await Promise.all(keys.map((key) => l1.until(`invalidate:${key}`, afterKill)));
  });

  it('one paused master: L1 off once its heartbeat goes unanswered, on again after it resumes', async () => {
    const mark = l1.mark;
    const paused = cluster().servers[2]!;
    paused.pause();
    try {
      await l1.until('coherent:false', mark);
    } finally {
      paused.resume();
    }
    await l1.until('coherent:true', mark);
    expect(l1.since(mark)).toEqual(['coherent:false', 'coherent:true']);
    const keys = await keysOnEveryMaster();
    expect(keys).toHaveLength(12);
  });
});
