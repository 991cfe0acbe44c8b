// The in-process L1 in front of real Redis, with real MSAL clients on the fake Entra ID: what the
// partition repository answers from it, keeps in it and drops from it. Coherence here is driven
// by hand (setCoherent, invalidate: what RedisInvalidations does on tracking messages), so that
// these tests pin the repository's side alone; real tracking has its own multi-process tests.
// Also the `l1` option of DistributedTokenCache, and the events of the sink RedisInvalidations drives.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DistributedTokenCache, PartitionKey } from '../../src';
import type { CacheInvalidateEvent, DistributedTokenCacheOptions, TokenCacheEvents } from '../../src';
import { internalsOf } from '../../src/cache/cache-internals';
import { PartitionCachePlugin } from '../../src/cache/cache-plugin';
import { L1Cache } from '../../src/cache/l1/l1-cache';
import { reportingSink } from '../../src/cache/l1/reporting-sink';
import { PartitionRepository } from '../../src/cache/partition-repository';
import type { Snapshot } from '../../src/cache/partition-repository';
import type { CompareAndSetResult, PartitionRecord, PartitionStore, ReadResult } from '../../src/cache/partition-store';
import { RedisPartitionStore } from '../../src/cache/redis-partition-store';
import type { FakeEntraId } from '../../src/testing';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import { thrownBy } from '../helpers/assertions';
import { appTokenJson } from '../helpers/cache-documents';
import { parseCacheDocument } from '../../src/cache/cache-document';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

/** The real Redis partition store, counting the reads that reach it, and failing writes on request. */
class CountedStore implements PartitionStore {
  reads = 0;
  failNextWrite = false;

  constructor(private readonly inner: RedisPartitionStore) {}

  read(storageKey: string): Promise<ReadResult> {
    this.reads++;
    return this.inner.read(storageKey);
  }

  compareAndSet(storageKey: string, expected: string, next: PartitionRecord | null, ttlMs: number): Promise<CompareAndSetResult> {
    if (this.failNextWrite) {
      this.failNextWrite = false;
      return Promise.reject(new Error('the connection was lost'));
    }
    return this.inner.compareAndSet(storageKey, expected, next, ttlMs);
  }

  getValue(key: string): Promise<string | undefined> {
    return this.inner.getValue(key);
  }

  setValue(key: string, value: string, ttlMs: number): Promise<void> {
    return this.inner.setValue(key, value, ttlMs);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

type Recorded = [name: string, payload: Record<string, unknown>];

/** One "instance": a repository on real Redis with its own L1 (coherent unless told otherwise). */
function instance(keyPrefix: string, options: { coherent?: boolean; writeFailure?: 'throw' | 'ignore' } = {}) {
  const redis = new KeyvRedis(process.env.REDIS_URL!);
  const store = new CountedStore(new RedisPartitionStore(redis, 2_000));
  const l1 = new L1Cache<Snapshot>({ maxEntries: 100, maxBytes: 10_000_000 });
  if (options.coherent !== false) l1.setCoherent(true);
  const events: Recorded[] = [];
  const repository = new PartitionRepository(
    store,
    (name, payload) => events.push([name, payload as unknown as Record<string, unknown>]),
    {
      keyPrefix,
      partitionTtlMs: { account: 60_000, app: 60_000, obo: 60_000 },
      readFailure: 'throw',
      writeFailure: options.writeFailure ?? 'throw',
      contentionTimeoutMs: 5_000,
    },
    l1,
  );
  const hits = (level: 'l1' | 'store') => events.filter(([name, payload]) => name === 'cache:hit' && payload.level === level).length;
  return { redis, store, l1, events, repository, hits };
}

let keyPrefix: string;
const open: { close(): Promise<void> }[] = [];
beforeEach(() => {
  keyPrefix = `l1-${randomUUID()}:`;
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

/** An instance (see {@link instance}) under this test's key prefix, closed after the test. */
function newInstance(options?: Parameters<typeof instance>[1]) {
  const made = instance(keyPrefix, options);
  open.push(made.store);
  return made;
}

describe('the partition repository with an L1, on Redis, driven by MSAL', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  const client = (repository: PartitionRepository, partition?: PartitionKey) =>
    new ConfidentialClientApplication({ ...entra.msalConfig(), cache: { cachePlugin: new PartitionCachePlugin(repository, partition) } });

  async function signIn(repository: PartitionRepository) {
    const user = addRandomUser(entra);
    const result = await client(repository).acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes });
    const homeAccountId = result.account!.homeAccountId;
    return { result, homeAccountId, partition: PartitionKey.forAccount(homeAccountId) };
  }

  it("after a sign-in, this process's silent calls are answered from L1: the store is not read", async () => {
    const { repository, store, hits } = newInstance();
    const { result, homeAccountId, partition } = await signIn(repository);
    const readsBefore = store.reads;

    const bound = client(repository, partition);
    const account = await bound.getTokenCache().getAccountByHomeId(homeAccountId);
    const silent = await bound.acquireTokenSilent({ account: account!, scopes });

    expect(silent.accessToken).toBe(result.accessToken);
    expect(store.reads).toBe(readsBefore);
    expect({ l1: hits('l1') > 0, store: hits('store') }).toEqual({ l1: true, store: 0 });
  });

  it('a write of this process (a forced refresh) replaces its entry: the next silent call gets the new token from L1', async () => {
    const { repository, store } = newInstance();
    const { homeAccountId, partition } = await signIn(repository);
    const account = (await client(repository, partition).getTokenCache().getAccountByHomeId(homeAccountId))!;
    const refreshed = await client(repository, partition).acquireTokenSilent({ account, scopes, forceRefresh: true });
    const readsBefore = store.reads;

    const next = await client(repository, partition).acquireTokenSilent({ account, scopes });

    expect(next.accessToken).toBe(refreshed.accessToken);
    expect(store.reads).toBe(readsBefore);
  });

  it('removeAccount keeps the deletion as an empty snapshot: the account is gone, without a store read', async () => {
    const { repository, store, events } = newInstance();
    const { homeAccountId, partition } = await signIn(repository);
    const bound = client(repository, partition);
    await bound.getTokenCache().removeAccount((await bound.getTokenCache().getAccountByHomeId(homeAccountId))!);
    const readsBefore = store.reads;
    events.length = 0;

    expect(await client(repository, partition).getTokenCache().getAccountByHomeId(homeAccountId)).toBeNull();
    expect(store.reads).toBe(readsBefore);
    expect(events.map(([name]) => name)).toEqual(['cache:miss']);
  });

  it("another instance's write is read from the store once the L1 entry is invalidated", async () => {
    const mine = newInstance();
    const theirs = newInstance();
    const { homeAccountId, partition } = await signIn(mine.repository);
    const account = (await client(theirs.repository, partition).getTokenCache().getAccountByHomeId(homeAccountId))!;
    const refreshed = await client(theirs.repository, partition).acquireTokenSilent({ account, scopes, forceRefresh: true });

    mine.l1.invalidate(mine.repository.storageKey(partition)); // what Redis tracking announces
    const seen = await client(mine.repository, partition).acquireTokenSilent({ account, scopes });

    expect(seen.accessToken).toBe(refreshed.accessToken);
    expect(mine.hits('store')).toBe(1);
  });
});

describe('the partition repository with an L1, on Redis', () => {
  const app = PartitionKey.forApp('00000000-0000-4000-8000-0000000011ca', 'tenant');
  const appDocument = (secret: string) => parseCacheDocument(appTokenJson(secret))!;

  it('an invalidation that arrives while a read of the same key is in flight leaves no entry', async () => {
    const { repository, l1, store } = newInstance();
    await repository.write(app, undefined, appDocument('v1'));
    l1.invalidate(repository.storageKey(app));

    const reading = repository.read(app); // the read is sent (its ticket taken)...
    l1.invalidate(repository.storageKey(app)); // ...and another instance's write is announced before it answers
    expect((await reading).version).not.toBe('');

    expect(l1.stats.entries).toBe(0);
    const readsBefore = store.reads;
    await repository.read(app);
    expect(store.reads).toBe(readsBefore + 1);
  });

  it('snapshots kept in L1 are shared and frozen, down to the entities', async () => {
    const { repository } = newInstance();
    const written = await repository.write(app, undefined, appDocument('v1'));
    const read = await repository.read(app);

    expect(read).toBe(written);
    const entity = Object.values(read.document.AccessToken)[0]!;
    expect([read, read.document, read.document.AccessToken, entity].every((part) => Object.isFrozen(part))).toBe(true);
    expect(() => {
      entity.secret = 'changed';
    }).toThrow(TypeError);
  });

  it('while not coherent, every read goes to the store and nothing is kept', async () => {
    const { repository, l1, store } = newInstance({ coherent: false });
    await repository.write(app, undefined, appDocument('v1'));
    await repository.read(app);
    await repository.read(app);

    expect(store.reads).toBe(2);
    expect(l1.stats).toMatchObject({ entries: 0, hits: 0 });
  });

  it('a corrupt entry is never kept: every read reports it', async () => {
    const { repository, redis, events, store } = newInstance();
    const client = (await redis.getClient()) as unknown as { hSet(key: string, fields: Record<string, string>): Promise<number> };
    await client.hSet(repository.storageKey(app), { version: 'v', partition: app.hash, cache: '{not json' });

    await repository.read(app);
    await repository.read(app);

    expect(events.filter(([name]) => name === 'cache:corrupt')).toHaveLength(2);
    expect(store.reads).toBe(2);
  });

  it('a write that fails drops the entry: the store may hold something newer that nobody announces', async () => {
    const { repository, l1, store } = newInstance({ writeFailure: 'ignore' });
    const written = await repository.write(app, undefined, appDocument('v1'));
    store.failNextWrite = true;

    expect(await repository.write(app, written, appDocument('v2'))).toBe(written); // ignored by policy
    expect(l1.stats.entries).toBe(0);
    await repository.read(app);
    expect(store.reads).toBe(1);
  });
});

describe('the sink that RedisInvalidations drives', () => {
  const keyPrefix = 'sink:';
  const partitionHash = PartitionKey.forApp('client', 'tenant').hash;
  const storageKey = `${keyPrefix}cache:{${partitionHash}}`;

  function sink() {
    const l1 = new L1Cache<string>({ maxEntries: 10, maxBytes: 1_000 });
    const events: CacheInvalidateEvent[] = [];
    const emit = ((name: keyof TokenCacheEvents, payload: CacheInvalidateEvent) => {
      if (name === 'cache:invalidate') events.push(payload);
    }) as Parameters<typeof reportingSink>[1];
    return { l1, events, sink: reportingSink(l1, emit, keyPrefix) };
  }

  it('reports a dropped entry by partition hash, and nothing for a key it did not hold', () => {
    const { l1, events, sink: forward } = sink();
    forward.setCoherent(true);
    l1.fill(l1.begin(storageKey), 'value', 5);
    forward.invalidate(storageKey);
    forward.invalidate(`${keyPrefix}cache:{${'0'.repeat(32)}}`);

    expect(l1.get(storageKey)).toBeUndefined();
    expect(events).toEqual([{ partitionHash, reason: 'write-elsewhere' }]);
  });

  it('reports a flush, and a loss of tracking once (not while already bypassed)', () => {
    const { l1, events, sink: forward } = sink();
    forward.setCoherent(true);
    l1.fill(l1.begin(storageKey), 'value', 5);
    forward.flush();
    forward.setCoherent(false);
    forward.setCoherent(false);

    expect(l1.coherent).toBe(false);
    expect(events).toEqual([{ reason: 'flush' }, { reason: 'tracking-lost' }]);
  });
});

describe('DistributedTokenCache: the l1 option', () => {
  const redisStore = () => new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) });

  async function l1Of(options: DistributedTokenCacheOptions) {
    const cache = new DistributedTokenCache(options);
    try {
      return internalsOf(cache).l1?.bounds;
    } finally {
      await cache.close();
    }
  }

  it('is on by default with a @keyv/redis store: 10,000 partitions, 64 MiB', async () => {
    expect(await l1Of({ store: redisStore() })).toEqual({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 });
  });

  it('takes its bounds, one or both', async () => {
    expect(await l1Of({ store: redisStore(), l1: { maxEntries: 50 } })).toEqual({ maxEntries: 50, maxBytes: 64 * 1024 * 1024 });
    expect(await l1Of({ store: redisStore(), l1: { maxEntries: 5, maxBytes: 1_000 } })).toEqual({ maxEntries: 5, maxBytes: 1_000 });
  });

  it('is off with l1: false, and with stores that cannot track changes (the in-memory Keyv already is in process)', async () => {
    expect(await l1Of({ store: redisStore(), l1: false })).toBeUndefined();
    expect(await l1Of({})).toBeUndefined();
    expect(await l1Of({ store: new Keyv(), l1: false })).toBeUndefined();
  });

  it('refuses bounds for a store that cannot track changes, saying why', () => {
    const error = thrownBy(() => new DistributedTokenCache({ store: new Keyv(), l1: { maxEntries: 10 } }));

    expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(error.message).toMatch(/^"options\.l1" needs a @keyv\/redis store: only Redis tells this process/);
  });

  it.each([
    ['options.l1', 'true', 'ERR_INVALID_ARG_TYPE', true],
    ['options.l1', 'null', 'ERR_INVALID_ARG_TYPE', null],
    ['options.l1', '{ size: 10 }', 'ERR_INVALID_ARG_VALUE', { size: 10 }],
    ['options.l1.maxEntries', '0', 'ERR_INVALID_ARG_VALUE', { maxEntries: 0 }],
    ['options.l1.maxEntries', '1.5', 'ERR_INVALID_ARG_VALUE', { maxEntries: 1.5 }],
    ['options.l1.maxBytes', "'64MB'", 'ERR_INVALID_ARG_TYPE', { maxBytes: '64MB' }],
    ['options.l1.maxBytes', '-1', 'ERR_INVALID_ARG_VALUE', { maxBytes: -1 }],
  ])('refuses %s = %s with %s naming the option', (name, _shown, code, l1) => {
    const error = thrownBy(() => new DistributedTokenCache({ store: redisStore(), l1: l1 as never }));

    expect(error.code).toBe(code);
    expect(error.message).toContain(`"${name}"`);
  });
});
