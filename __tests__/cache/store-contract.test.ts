// One contract for the token cache, run against every Keyv store we claim to support.
import { internalsOf } from '../../src/cache/cache-internals';
import { randomUUID } from 'node:crypto';
import { ConfidentialClientApplication, InteractionRequiredAuthError } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore, PartitionKey } from '../../src';
import type { CacheCorruptEvent } from '../../src';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import { memoryStore, postgresStore, redisStore } from '../helpers/stores';
import type { CorruptVariant, StoreFixture } from '../helpers/stores';
import type { FakeEntraId, FakeUser } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe.each([
  ['in-memory Keyv', async () => memoryStore()],
  ['Redis (@keyv/redis)', redisStore],
  ['PostgreSQL (@keyv/postgres)', postgresStore],
])('token cache contract on %s', (_name, createFixture: () => Promise<StoreFixture>) => {
  let entra: FakeEntraId;
  let store: StoreFixture;
  let keyPrefix: string;
  let caches: DistributedTokenCache[];
  let locks: MemoryLockStore;

  beforeAll(async () => {
    entra = await startFakeEntraId();
    store = await createFixture();
  });
  afterAll(async () => {
    await store.close();
    await entra.close();
  });
  beforeEach(() => {
    keyPrefix = `contract-${randomUUID()}:`;
    caches = [];
    locks = new MemoryLockStore(); // instances of one process share it; across processes use RedisLockStore
  });
  afterEach(async () => {
    // Close the app instances but not the shared store connections (the fixture owns those).
    for (const cache of caches) await (store.closeCaches ? cache.close() : cache.lockStore.close());
  });

  /** A new app instance over the shared store. */
  function instance(options: { readFailure?: 'throw' | 'miss' } = {}): { app: DistributedClientApplication; cache: DistributedTokenCache } {
    const cache = new DistributedTokenCache({ store: store.newKeyv(), lockStore: locks, keyPrefix, ...options });
    caches.push(cache);
    return { app: new DistributedClientApplication(entra.msalConfig(), { cache }), cache };
  }

  const storageKeyOf = (homeAccountId: string): string =>
    `${keyPrefix}cache:{${PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId).hash}}`;

  const newUser = (): FakeUser => addRandomUser(entra, 'Contract User');

  async function signIn(app: DistributedClientApplication, user: FakeUser) {
    return app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes });
  }

  it('writes partitions with an atomic compare-and-set on Redis and PostgreSQL, under a lock elsewhere', () => {
    expect(instance().cache.atomicWrites).toBe(store.name !== 'in-memory Keyv');
  });

  it('tokens written by one instance are used by another without a token-endpoint call', async () => {
    const user = newUser();
    const first = await signIn(instance().app, user);
    const callsBefore = entra.tokenCallCount();
    const second = await instance().app.acquireTokenSilent({ homeAccountId: first.account!.homeAccountId, scopes });
    expect(second.accessToken).toBe(first.accessToken);
    expect(second.fromCache).toBe(true);
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it('emits hit, miss and write events naming the partition by hash only', async () => {
    const user = newUser();
    const { app, cache } = instance();
    const events: [string, unknown][] = [];
    for (const name of ['cache:hit', 'cache:miss', 'cache:write'] as const) cache.on(name, (event: unknown) => events.push([name, event]));
    const homeAccountId = entra.homeAccountIdOf(user);
    expect(await app.getAccountByHomeId(homeAccountId)).toBeNull();
    await signIn(app, user);
    await app.acquireTokenSilent({ homeAccountId, scopes });
    const partitionHash = PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId).hash;
    expect(events.map(([name]) => name)).toEqual(['cache:miss', 'cache:write', 'cache:hit']);
    expect(events.every(([, event]) => (event as { partitionHash: string }).partitionHash === partitionHash)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(homeAccountId);
  });

  it('removeAccount deletes the partition, the last account included (msal-node #6954)', async () => {
    const user = newUser();
    const { app } = instance();
    const result = await signIn(app, user);
    expect(await store.exists(storageKeyOf(result.account!.homeAccountId))).toBe(true);
    // This instance has found the account by homeAccountId before: that must not outlive the removal.
    expect((await app.acquireTokenSilent({ homeAccountId: result.account!.homeAccountId, scopes })).fromCache).toBe(true);
    await instance().app.removeAccount(result.account!);
    expect(await store.exists(storageKeyOf(result.account!.homeAccountId))).toBe(false);
    expect(await instance().app.getAccountByHomeId(result.account!.homeAccountId)).toBeNull();
    await expect(app.acquireTokenSilent({ homeAccountId: result.account!.homeAccountId, scopes })).rejects.toBeInstanceOf(
      InteractionRequiredAuthError,
    );
  });

  it('Edge 11: a removeAccount whose read predates a fresh sign-in removes only what it read: the new sign-in stays', async () => {
    const user = newUser();
    const homeAccountId = entra.homeAccountIdOf(user);
    const remover = instance();
    await signIn(instance().app, user);
    // The removal's MSAL client reads the partition now (one snapshot per operation, as removeAccount does) ...
    const msal = new ConfidentialClientApplication({
      ...entra.msalConfig(),
      cache: {
        cachePlugin: internalsOf(remover.cache).operationPlugin(PartitionKey.forAccount(homeAccountId), entra.msalConfig().auth.clientId),
      },
    });
    const account = await msal.getTokenCache().getAccountByHomeId(homeAccountId);
    // ... then the user signs in again on another instance, and only then does the removal write.
    const fresh = await signIn(instance().app, user);
    await msal.getTokenCache().removeAccount(account!);

    const silent = await instance().app.acquireTokenSilent({ homeAccountId, scopes });
    expect(silent.fromCache).toBe(true);
    expect(silent.accessToken).toBe(fresh.accessToken);
  });

  it('concurrent writers to one partition all survive (10 scopes from 2 instances at once)', async () => {
    const user = newUser();
    const first = instance();
    const second = instance();
    const [a, b] = [first.app, second.app];
    let conflicts = 0;
    for (const { cache } of [first, second]) cache.on('cache:conflict', () => conflicts++);
    const { account } = await signIn(a, user);
    const extraScopes = Array.from({ length: 10 }, (_, index) => `https://api${index}.example.test/read`);
    await Promise.all(extraScopes.map((scope, index) => (index % 2 ? a : b).acquireTokenSilent({ account: account!, scopes: [scope] })));
    const callsBefore = entra.tokenCallCount();
    const reader = instance().app;
    for (const scope of extraScopes) {
      expect((await reader.acquireTokenSilent({ account: account!, scopes: [scope] })).fromCache).toBe(true);
    }
    expect(entra.tokenCallCount()).toBe(callsBefore);
    expect(conflicts).toBeGreaterThan(0); // the writes really overlapped: every one read the same version
    // Edge 12: each instance wrote the partition one write at a time; its queue is gone once idle.
    expect([
      internalsOf(first.cache).repository.partitionsBeingWritten,
      internalsOf(second.cache).repository.partitionsBeingWritten,
    ]).toEqual([0, 0]);
  });

  it('sets the partition time-to-live on write', async () => {
    const cache = new DistributedTokenCache({ store: store.newKeyv(), lockStore: locks, keyPrefix, partitionTtlMs: 60_000 });
    caches.push(cache);
    const before = Date.now();
    const result = await signIn(new DistributedClientApplication(entra.msalConfig(), { cache }), newUser());
    const expiresAt = await store.expiresAt(storageKeyOf(result.account!.homeAccountId));
    expect(expiresAt).toBeGreaterThan(before);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it('partitionTtlMs per kind: account, app and on-behalf-of partitions each get their own time-to-live', async () => {
    const ttls = { account: 60_000, app: 120_000, obo: 30_000 };
    const cache = new DistributedTokenCache({ store: store.newKeyv(), lockStore: locks, keyPrefix, partitionTtlMs: ttls });
    caches.push(cache);
    const config = entra.msalConfig();
    const app = new DistributedClientApplication(config, { cache });
    const before = Date.now();
    const signedIn = await signIn(app, newUser());
    await app.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
    await app.acquireTokenOnBehalfOf({ oboAssertion: signedIn.accessToken, scopes: ['https://graph.example.test/User.Read'] });
    const after = Date.now();
    const tenantId = new URL(config.auth.authority).pathname.split('/')[1]!;
    const partitions = {
      account: PartitionKey.forAccount(signedIn.account!.homeAccountId).forClient(config.auth.clientId),
      app: PartitionKey.forApp(config.auth.clientId, tenantId),
      obo: PartitionKey.forOnBehalfOf(config.auth.clientId, signedIn.accessToken),
    };
    for (const kind of ['account', 'app', 'obo'] as const) {
      const expiresAt = await store.expiresAt(`${keyPrefix}cache:{${partitions[kind].hash}}`);
      // Written between `before` and `after`; a millisecond either way for the clocks' rounding.
      expect({ kind, expiresAt: expiresAt! >= before + ttls[kind] - 1 && expiresAt! <= after + ttls[kind] + 1 }).toEqual({
        kind,
        expiresAt: true,
      });
    }
  });

  it.each<CorruptVariant>(['random-bytes', 'truncated-json', 'wrong-shape', 'wrong-format'])(
    'a %s entry is a miss plus an event, and the next sign-in replaces it',
    async (variant) => {
      const user = newUser();
      const homeAccountId = entra.homeAccountIdOf(user);
      await store.corrupt(storageKeyOf(homeAccountId), variant);
      const { app, cache } = instance();
      const corrupt: CacheCorruptEvent[] = [];
      cache.on('cache:corrupt', (event) => corrupt.push(event));
      expect(await app.getAccountByHomeId(homeAccountId)).toBeNull();
      expect(corrupt).toHaveLength(1);
      await signIn(app, user);
      expect((await instance().app.acquireTokenSilent({ homeAccountId, scopes })).fromCache).toBe(true);
    },
  );

  it("another partition's record copied under a user's key is refused (foreign-partition)", async () => {
    const victim = newUser();
    const attacker = newUser();
    const { app, cache } = instance();
    await signIn(app, attacker);
    await store.copy(storageKeyOf(entra.homeAccountIdOf(attacker)), storageKeyOf(entra.homeAccountIdOf(victim)));
    const corrupt: CacheCorruptEvent[] = [];
    cache.on('cache:corrupt', (event) => corrupt.push(event));
    expect(await app.getAccountByHomeId(entra.homeAccountIdOf(victim))).toBeNull();
    expect(corrupt.map((event) => event.reason)).toEqual(['foreign-partition']);
  });
});
