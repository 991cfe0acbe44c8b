// RedisLockStore on a real 3-master Redis Cluster, through node-redis cluster clients: the whole
// lock-store contract (src/testing/lock-store-contract.ts), then leases, single-use claims with
// fencing, and waiters woken by a completion published on another master, with the cluster's own
// twists. Two stores with their own cluster clients stand for two processes.
import { randomUUID } from 'node:crypto';
import { LockTimeoutError, RedisLockStore } from '../../src';
import type { ClaimOptions } from '../../src';
import { lockStoreContract } from '../../src/testing';
import { claimUntilNotBusy, expectClaimed } from '../../src/testing/lock-store-contract';
import { connectedClusterClient, newClusterClient, useRedisCluster } from './cluster-clients';
import type { ClusterClient } from './cluster-clients';

const TTL = 60_000;
const claimOptions: ClaimOptions = { leaseMs: 10_000, recordTtlMs: TTL };
const lockOptions = { leaseMs: 10_000, waitTimeoutMs: 10_000 };

describe('RedisLockStore on a Redis Cluster', () => {
  const { cluster, raw } = useRedisCluster();
  let clients: ClusterClient[];
  let stores: RedisLockStore[];
  let keyPrefix: string;
  let key: string;

  beforeEach(() => {
    keyPrefix = `cluster-lock-${randomUUID()}:`;
    key = `key-${randomUUID()}`;
    clients = [];
    stores = [];
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const client of clients.splice(0)) client.destroy();
  });

  /** A store over its own, connected cluster client (one app instance). */
  async function newStore(): Promise<RedisLockStore> {
    const client = await connectedClusterClient(cluster().rootNodes);
    clients.push(client);
    const store = new RedisLockStore({ client, keyPrefix });
    stores.push(store);
    return store;
  }

  // Each test's two stores are fresh cluster clients with a fresh keyPrefix (the beforeEach above).
  lockStoreContract({ describe, test, beforeEach, afterEach }, async () => ({ a: await newStore(), b: await newStore() }), {
    name: 'RedisLockStore over Redis Cluster clients',
  });

  /** The port of the master serving the slot of `tag` (all keys of one lock key carry it as their hash tag). */
  async function masterPortOf(tag: string): Promise<number> {
    const slot = await raw().clusterKeySlot(tag);
    return raw().slots[slot]!.master.port;
  }

  /** One key per master, so that work on them publishes from every node. */
  async function keyOnEachMaster(): Promise<string[]> {
    const byPort = new Map<number, string>();
    while (byPort.size < raw().masters.length) {
      const candidate = `key-${randomUUID()}`;
      const port = await masterPortOf(candidate);
      if (!byPort.has(port)) byPort.set(port, candidate);
    }
    return [...byPort.values()];
  }

  it('acquire gives exclusive access: the other instance waits and gets the lock right after release, with a higher fence', async () => {
    const [a, b] = [await newStore(), await newStore()];
    const first = await a.acquire(key, lockOptions);
    await expect(b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);

    let secondGranted = false;
    const second = b.acquire(key, { leaseMs: 10_000, waitTimeoutMs: 30_000 }).then((lease) => {
      secondGranted = true;
      return lease;
    });
    // `claim:{key}` shares the slot, so the node and the connection, of `lock:{key}`: once this is
    // answered, b's first acquire attempt has been answered too.
    await b.claim(key, claimOptions);
    expect(secondGranted).toBe(false);

    await first.release();
    const secondLease = await second;
    expect(secondLease.fence).toBeGreaterThan(first.fence);
    expect(await secondLease.extend(10_000)).toBe(true);
    await secondLease.release();
    const third = await a.acquire(key, lockOptions);
    expect(third.fence).toBeGreaterThan(secondLease.fence);
    await third.release();
  });

  it('claim, complete and settle: one claimer, busy for the others, done with its outcome; a settled outcome is final and fences a stale claimer', async () => {
    const [a, b] = [await newStore(), await newStore()];
    const claims = await Promise.all([a.claim(key, claimOptions), b.claim(key, claimOptions)]);
    expect(claims.map((claim) => claim.state).sort()).toEqual(['busy', 'claimed']);
    const winner = claims.findIndex((claim) => claim.state === 'claimed');
    const [holder, other] = winner === 0 ? [a, b] : [b, a];
    expect(await holder.complete(expectClaimed(claims[winner]!), 'outcome-1', TTL)).toBe(true);
    expect(await other.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
    expect(await other.settle(key, 'unknown', TTL)).toBe('outcome-1');

    const abandonedKey = `${key}-abandoned`;
    const stale = expectClaimed(await a.claim(abandonedKey, { leaseMs: 200, recordTtlMs: TTL })); // never completed
    expect(await claimUntilNotBusy(b, abandonedKey)).toEqual({ state: 'abandoned' });
    expect(await b.settle(abandonedKey, 'unknown', TTL)).toBe('unknown');
    expect(await a.settle(abandonedKey, 'other', TTL)).toBe('unknown');
    expect(await a.complete(stale, 'late-outcome', TTL)).toBe(false);
    expect(await a.claim(abandonedKey, claimOptions)).toEqual({ state: 'done', outcome: 'unknown' });
  });

  it('waitForChange is woken by a completion on another store, for keys on every master', async () => {
    const [a, b] = [await newStore(), await newStore()];
    // b subscribes on its first wait, and wakes every waiter once the subscription is ready: from
    // then on only a published change (or the 30 s timeout) ends a wait.
    await b.waitForChange(`warm-up-${randomUUID()}`, 30_000);

    for (const onMaster of await keyOnEachMaster()) {
      const lease = expectClaimed(await a.claim(onMaster, claimOptions));
      expect(await b.claim(onMaster, claimOptions)).toEqual({ state: 'busy' });
      const waiting = b.waitForChange(onMaster, 30_000);
      expect(await a.complete(lease, `outcome-${onMaster}`, TTL)).toBe(true);
      await waiting; // a lost message would wait the full 30 s and hit this test's timeout
      expect(await b.claim(onMaster, claimOptions)).toEqual({ state: 'done', outcome: `outcome-${onMaster}` });
    }
    expect(b.waitingKeys).toBe(0);
  }, 20_000);

  it('works on a cluster client whose connect() another owner has started but not finished (no slots known yet)', async () => {
    const client = newClusterClient(cluster().rootNodes);
    clients.push(client);
    const connecting = client.connect(); // as KeyvRedis does on its first command
    const store = new RedisLockStore({ client, keyPrefix });
    stores.push(store);
    const lease = expectClaimed(await store.claim(key, claimOptions));
    expect(await store.complete(lease, 'outcome-1', TTL)).toBe(true);
    await connecting;
    expect(await store.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
  });

  it('close() closes the store’s own subscriber but leaves the given cluster client open', async () => {
    const client = await connectedClusterClient(cluster().rootNodes);
    clients.push(client);
    const store = new RedisLockStore({ client, keyPrefix });
    await store.waitForChange(`warm-up-${randomUUID()}`, 30_000); // the subscriber is connected
    await store.close();
    expect(client.isOpen).toBe(true);
    expect(await client.set(`${keyPrefix}probe`, 'v')).toBe('OK');
    expect(await client.get(`${keyPrefix}probe`)).toBe('v');
  });
});
