// Where the library's keys land on a real 3-master Redis Cluster: every key carries a hash tag, is
// stored in the slot of that tag, and all records of one code (claim lock, attempt, outcome, fence
// and the redeemed mirror) share one slot, so each Lua script touches one node.
import { randomUUID } from 'node:crypto';
import { PartitionKey } from '../../src';
import { RedisCluster } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import { clusterAppInstance, connectedClusterClient, keysOnMasters } from './cluster-clients';
import type { ClusterAppInstance, ClusterClient } from './cluster-clients';

const redirectUri = 'https://app.example.test/auth/callback';

/** The hash tag Redis Cluster hashes: between the first `{` and the first `}` after it, if not empty. */
function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

describe('keys on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let entra: FakeEntraId;
  let raw: ClusterClient;
  let instances: ClusterAppInstance[] = [];
  const keyPrefix = `cluster-keys-${randomUUID()}:`;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    entra = await startFakeEntraId();
    raw = await connectedClusterClient(cluster.rootNodes);
    instances = await Promise.all([1, 2].map(() => clusterAppInstance(entra, cluster.rootNodes, keyPrefix)));
  }, 60_000);
  afterAll(async () => {
    for (const instance of instances) await instance.close();
    raw?.destroy();
    await entra?.close();
    await cluster?.stop();
  });

  it('every key the library wrote has a hash tag and lives in its slot; each code’s records share one slot', async () => {
    const codeHashes = new Set<string>();
    for (const { app } of instances) app.on('redeem:redeemed', ({ codeHash }) => codeHashes.add(codeHash));
    const flightRounds: string[] = []; // the claim keys of token flights (one token request per fleet)
    for (const { lockStore } of instances) {
      const claim = lockStore.claim.bind(lockStore);
      lockStore.claim = (key, options) => {
        if (key.startsWith('flight:')) flightRounds.push(key);
        return claim(key, options);
      };
    }

    // 10 sign-ins, each redeemed by duplicates on both instances, a silent call (a token request: a flight), and a lock.
    const signIns = await Promise.all(Array.from({ length: 10 }, () => newPkceSignIn(entra, redirectUri, 'Key Slot User')));
    const results = await Promise.all(
      signIns.flatMap(({ code, verifier }) =>
        instances.map(({ app }) => app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'], codeVerifier: verifier })),
      ),
    );
    await instances[1]!.app.acquireTokenSilent({ account: results[0]!.account!, scopes: ['https://api.example.test/read'] });
    await (await instances[0]!.lockStore.acquire('a-lock', { leaseMs: 10_000, waitTimeoutMs: 10_000 })).release();
    expect(codeHashes.size).toBe(10);

    const keys = await keysOnMasters(raw, keyPrefix);
    expect(keys.length).toBeGreaterThan(0);
    const slotOf = new Map<string, number>();
    for (const { key, port } of keys) {
      const tag = hashTagOf(key);
      expect([key, tag]).toEqual([key, expect.any(String)]);
      const slot = await raw.clusterKeySlot(key);
      expect([key, slot]).toEqual([key, await raw.clusterKeySlot(tag!)]);
      expect([key, port]).toEqual([key, raw.slots[slot]!.master.port]);
      slotOf.set(key, slot);
    }

    const expected = [
      ...signIns.map(
        ({ user }) => `cache:{${PartitionKey.forAccount(entra.homeAccountIdOf(user)).forClient(entra.msalConfig().auth.clientId).hash}}`,
      ),
      ...[...codeHashes].flatMap((codeHash) => [
        `claim:{${codeHash}}:attempt`,
        `claim:{${codeHash}}:fence`,
        `claim:{${codeHash}}:outcome`,
        `redeemed:{${codeHash}}`,
      ]),
      ...[...new Set(flightRounds)].flatMap((round) => [`claim:{${round}}:attempt`, `claim:{${round}}:fence`, `claim:{${round}}:outcome`]),
      'lock:{a-lock}:fence',
    ];
    expect(flightRounds.length).toBeGreaterThan(0);
    expect(keys.map(({ key }) => key.slice(keyPrefix.length)).sort()).toEqual(expected.sort());
    for (const codeHash of codeHashes) {
      const slots = keys.filter(({ key }) => hashTagOf(key) === codeHash).map(({ key }) => slotOf.get(key));
      expect(slots).toHaveLength(4);
      expect(new Set(slots).size).toBe(1);
    }
    // 10 codes and 10 partitions in 20 slots: the keys really are spread over the masters.
    expect(new Set(keys.map(({ port }) => port)).size).toBeGreaterThan(1);
  });
});
