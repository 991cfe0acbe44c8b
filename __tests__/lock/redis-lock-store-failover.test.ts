// RedisLockStore through a Redis failover (issue 18): claims made durable with WAIT (replicaAcks),
// calls retried on a connection that resets, and no listener leak while a client reconnects.
// Redis is real: a primary and a replica behind one endpoint, or one server behind a TcpProxy.
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createClient } from '@keyv/redis';
import { RedisLockStore, StoreUnavailableError } from '../../src';
import { redisLockStoreInternals } from '../../src/lock/redis/redis-lock-store';
import type { Claim } from '../../src';
import { RedisReplicaPair, RedisServer, TcpProxy, findFreePort } from '../../src/testing';
import { rejectionOf, thrownBy } from '../helpers/assertions';

const claimOptions = { leaseMs: 10_000, recordTtlMs: 60_000 };
const keys = (count: number): string[] => Array.from({ length: count }, () => randomUUID());

const stores: RedisLockStore[] = [];
function newStore(options: ConstructorParameters<typeof RedisLockStore>[0]): RedisLockStore {
  const store = new RedisLockStore(options);
  stores.push(store);
  return store;
}
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

describe('RedisLockStore replicaAcks', () => {
  let pair: RedisReplicaPair;
  beforeEach(async () => {
    pair = await RedisReplicaPair.start();
  });
  afterEach(async () => {
    pair.restoreReplication();
    await pair.stop();
  });

  it('rejects a bad replicaAcks (TypeError ERR_INVALID_ARG_VALUE)', () => {
    for (const replicaAcks of [-1, 1.5, 'all', 17]) {
      expect(thrownBy(() => new RedisLockStore({ url: pair.url, replicaAcks: replicaAcks as never }))).toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
      });
    }
  });

  it("'auto': a claim the replica does not acknowledge fails with ERR_STORE_UNAVAILABLE and is withdrawn, so the key can be claimed once the replica is back", async () => {
    const store = newStore({ url: pair.url, keyPrefix: `acks-${randomUUID()}:`, commandTimeoutMs: 500 });
    const [key] = keys(1);
    pair.cutReplication();
    const error = await rejectionOf(store.claim(key!, claimOptions));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/acknowledged by 0 of 1 replica\(s\) within 500 ms/);

    pair.restoreReplication();
    await pair.untilReplicated();
    expect(await store.claim(key!, claimOptions)).toMatchObject({ state: 'claimed' });
  });

  it('a claim acknowledged by the replica survives the failover: after it the key is still held', async () => {
    const store = newStore({ url: pair.url, keyPrefix: `acks-${randomUUID()}:`, commandTimeoutMs: 2000 });
    const claimed = keys(20);
    for (const claim of await Promise.all(claimed.map((key) => store.claim(key, claimOptions)))) expect(claim.state).toBe('claimed');
    pair.cutReplication();
    await pair.failover();
    for (const claim of await Promise.all(claimed.map((key) => store.claim(key, claimOptions)))) expect(claim.state).toBe('busy');
  });

  it('replicaAcks 0: no WAIT, so a claim the replica never saw is lost in the failover (the documented risk)', async () => {
    const store = newStore({ url: pair.url, keyPrefix: `acks-${randomUUID()}:`, replicaAcks: 0 });
    const [key] = keys(1);
    pair.cutReplication();
    expect(await store.claim(key!, claimOptions)).toMatchObject({ state: 'claimed' });
    await pair.failover();
    expect(await store.claim(key!, claimOptions)).toMatchObject({ state: 'claimed' });
  });
});

describe('RedisLockStore on a connection that resets', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  beforeEach(async () => {
    redis = await RedisServer.start();
    proxy = await TcpProxy.start({ targetPort: redis.port });
  });
  afterEach(async () => {
    await proxy.close();
    await redis.stop();
  });

  it.each([
    ['before they reach Redis', 'both', 'requests'],
    ['after Redis ran them (their replies lost)', 'replies', 'replies'],
  ] as const)('claims on a connection reset %s are retried: each is claimed, once, with no error', async (_when, pause, held) => {
    const keyPrefix = `reset-${randomUUID()}:`;
    const store = newStore({ url: proxy.url, keyPrefix, commandTimeoutMs: 5000 });
    const other = newStore({ url: redis.url, keyPrefix });
    await store.claim(randomUUID(), claimOptions); // connected, and the script known to Redis (no NOSCRIPT round trip)
    const claimed = keys(20);
    proxy.pause(pause);
    const holding = proxy.whenHolding(held);
    const claims = Promise.all(claimed.map((key) => store.claim(key, claimOptions)));
    await holding;
    if (pause === 'replies') {
      // Every claim ran in Redis: the retry must find its own token, not a busy claim.
      const direct = createClient({ url: redis.url });
      direct.on('error', () => undefined);
      await direct.connect();
      while ((await direct.keys(`${keyPrefix}claim:*:lock`)).length < claimed.length);
      direct.destroy();
    }
    proxy.resetConnections();
    proxy.resume();

    const results: Claim[] = await claims;
    for (const result of results) expect(result.state).toBe('claimed');
    for (const key of claimed) expect(await other.claim(key, claimOptions)).toMatchObject({ state: 'busy' });
    // The leases are the real owners: completing them records the outcomes.
    for (const result of results) if (result.state === 'claimed') expect(await store.complete(result.lease, 'ok', 60_000)).toBe(true);
    for (const key of claimed) expect(await other.claim(key, claimOptions)).toEqual({ state: 'done', outcome: 'ok' });
  });

  it('50 calls waiting for a reconnecting client share one ready listener (Node warns of a leak past 10)', async () => {
    const store = newStore({ url: proxy.url, keyPrefix: `listeners-${randomUUID()}:`, commandTimeoutMs: 10_000 });
    await store.connect();
    const client = redisLockStoreInternals(store).connection.client as unknown as EventEmitter & { isReady: boolean };
    const ownListeners = client.listenerCount('ready'); // the store's own (it clears the last connection error)
    proxy.switchTo(await findFreePort()); // nothing listens there: the client keeps reconnecting
    proxy.resetConnections();
    while (client.isReady) await new Promise((resolve) => setImmediate(resolve));
    const claims = Promise.all(keys(50).map((key) => store.claim(key, claimOptions)));
    // Every claim is waiting for 'ready' once a listener beyond the store's own is there.
    while (client.listenerCount('ready') === ownListeners) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = client.listenerCount('ready') - ownListeners;
    proxy.switchTo(redis.port);
    for (const claim of await claims) expect(claim.state).toBe('claimed');
    expect(waiting).toBe(1);
    expect(client.listenerCount('ready')).toBe(ownListeners);
    expect(ownListeners + waiting).toBeLessThanOrEqual(client.getMaxListeners()); // no MaxListenersExceededWarning
  });
});
