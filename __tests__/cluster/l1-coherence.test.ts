// The L1's coherence on a real 3-master Redis Cluster across OS processes: each app instance has
// its own cluster clients and its own L1, kept coherent by one tracking connection per master.
// Once a write on one process has resolved, the other never reads the older version (forced
// refreshes, removeAccount, sign-ins again; rounds in helpers/l1-coherence-rounds.ts), each user's
// partition on the master its hash maps to.
import { randomUUID } from 'node:crypto';
import { RedisCluster } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import { startFakeEntraId } from '../helpers/entra';
import { l1HitsOf, writeThenReadRounds } from '../helpers/l1-coherence-rounds';
import { connectedClusterClient, keysOnMasters } from './cluster-clients';
import type { ClusterClient } from './cluster-clients';

const USERS = 8;
const ROUNDS_EACH = 131; // 8 x 131 = 1,048 rounds; the last one signs in again after a removal

describe('L1 coherence across processes on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let raw: ClusterClient;
  let entra: FakeEntraId;
  let instances: [AppInstanceProcess, AppInstanceProcess];
  const keyPrefix = `cluster-l1-coherence-${randomUUID()}:`;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    raw = await connectedClusterClient(cluster.rootNodes);
    entra = await startFakeEntraId();
    const start = (): Promise<AppInstanceProcess> =>
      AppInstanceProcess.start(entra, keyPrefix, {}, { clusterRootNodes: cluster.rootNodes });
    instances = (await Promise.all([start(), start()])) as [AppInstanceProcess, AppInstanceProcess];
  }, 60_000);
  afterAll(async () => {
    await Promise.all(instances?.map((instance) => instance.stop()) ?? []);
    raw?.destroy();
    await entra?.close();
    await cluster?.stop();
  });

  it(`after a write resolves on one process, the other never reads the older version (${USERS * ROUNDS_EACH} rounds)`, async () => {
    expect(await writeThenReadRounds(entra, instances, { users: USERS, roundsEach: ROUNDS_EACH, removeEvery: 10 })).toEqual([]);
    expect((await l1HitsOf(instances)).map((hits) => hits > 0)).toEqual([true, true]);
    // On the cluster's masters, not elsewhere: one partition per user (the last round signed in again).
    expect(await keysOnMasters(raw, `${keyPrefix}cache:`)).toHaveLength(USERS);
  }, 180_000);
});
