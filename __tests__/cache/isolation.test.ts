// Partition isolation: 200 users signing in and refreshing at once through ONE application never
// see each other's tokens, because every operation runs in an MSAL client bound to one partition.
import { randomBytes, randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, KeyRing, PartitionKey } from '../../src';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId, FakeUser } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const USERS = 200;

describe('partition isolation under concurrency', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  it(`${USERS} users signing in and refreshing concurrently through one DistributedClientApplication: every partition holds exactly its own account`, async () => {
    const keyPrefix = `isolation-${randomUUID()}:`;
    const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) }), keyPrefix });
    const app = new DistributedClientApplication(entra.msalConfig(), { cache });
    const users: FakeUser[] = Array.from({ length: USERS }, (_, index) => ({
      oid: randomUUID(),
      name: `User ${index}`,
      username: `user${index}@example.test`,
    }));
    users.forEach((user) => entra.addUser(user));
    try {
      const signIns = await Promise.all(
        users.map((user) => app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] })),
      );
      const refreshes = await Promise.all(
        users.map((user) => app.acquireTokenSilent({ homeAccountId: entra.homeAccountIdOf(user), scopes: ['Mail.Read'] })),
      );

      users.forEach((user, index) => {
        expect(signIns[index]!.account!.homeAccountId).toBe(entra.homeAccountIdOf(user));
        expect(entra.verifyAccessToken(signIns[index]!.accessToken)).toMatchObject({ oid: user.oid });
        expect(refreshes[index]!.account!.homeAccountId).toBe(entra.homeAccountIdOf(user));
        expect(entra.verifyAccessToken(refreshes[index]!.accessToken)).toMatchObject({ oid: user.oid, scp: 'Mail.Read' });
      });

      const raw = createClient({ url: process.env.REDIS_URL! });
      await raw.connect();
      try {
        for (const user of users) {
          const homeAccountId = entra.homeAccountIdOf(user);
          const stored = JSON.parse(
            (await raw.hGet(
              `${keyPrefix}cache:{${PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId).hash}}`,
              'cache',
            ))!,
          ) as Record<string, Record<string, { home_account_id: string }>>;
          const owners = new Set(
            ['Account', 'IdToken', 'AccessToken', 'RefreshToken'].flatMap((section) =>
              Object.values(stored[section]!).map((entity) => entity.home_account_id),
            ),
          );
          expect([...owners]).toEqual([homeAccountId]);
          expect(Object.keys(stored.AccessToken!)).toHaveLength(2); // User.Read and Mail.Read
        }
      } finally {
        raw.destroy();
      }
    } finally {
      await cache.close();
    }
  });
});

// Edge 4: two apps or deployments on one Redis never share partitions or records.
describe('isolation between apps and deployments on one Redis (edge 4)', () => {
  const redirectUri = 'https://app.example.test/auth/callback';
  const scopes = ['User.Read'];
  const url = process.env.REDIS_URL!;
  const clients = [
    { clientId: randomUUID(), clientSecret: 'secret-of-app-one' },
    { clientId: randomUUID(), clientSecret: 'secret-of-app-two' },
  ];
  let entra: FakeEntraId;
  let caches: DistributedTokenCache[];
  beforeAll(async () => {
    entra = await startFakeEntraId({ clients });
  });
  afterAll(() => entra.close());
  beforeEach(() => {
    caches = [];
  });
  afterEach(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
  });

  function deployment(options: { namespace?: string; keyPrefix: string; clientId?: string; keyRing?: KeyRing }) {
    const store = new Keyv({ store: new KeyvRedis(url), ...(options.namespace !== undefined && { namespace: options.namespace }) });
    const cache = new DistributedTokenCache({
      store,
      keyPrefix: options.keyPrefix,
      ...(options.keyRing && { encryption: { keyRing: options.keyRing } }),
    });
    caches.push(cache);
    const corrupt: unknown[] = [];
    cache.on('cache:corrupt', (event) => corrupt.push(event));
    return { app: new DistributedClientApplication(entra.msalConfig(options.clientId ?? clients[0]!.clientId), { cache }), cache, corrupt };
  }

  const signIn = (app: DistributedClientApplication, user: FakeUser, clientId = clients[0]!.clientId) =>
    app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user, clientId }), redirectUri, scopes });

  it("blue/green by Keyv namespace: removeAccount on green leaves blue's acquireTokenSilent working", async () => {
    const keyPrefix = `bluegreen-${randomUUID()}:`;
    const blue = deployment({ namespace: 'blue', keyPrefix });
    const green = deployment({ namespace: 'green', keyPrefix });
    const user = addRandomUser(entra, 'Blue Green');
    const homeAccountId = entra.homeAccountIdOf(user);
    const onBlue = await signIn(blue.app, user);
    await signIn(green.app, user);

    await green.app.removeAccount((await green.app.getAccountByHomeId(homeAccountId))!);

    const callsBefore = entra.tokenCallCount();
    const silent = await blue.app.acquireTokenSilent({ homeAccountId, scopes });
    expect(silent.accessToken).toBe(onBlue.accessToken);
    expect(entra.tokenCallCount()).toBe(callsBefore);
    await expect(green.app.acquireTokenSilent({ homeAccountId, scopes })).rejects.toMatchObject({ errorCode: 'no_account_in_cache' });
  });

  it("blue/green with different key rings: neither reads the other's records as undecryptable, nor overwrites them", async () => {
    const keyPrefix = `bluegreen-keys-${randomUUID()}:`;
    const ring = (id: string) => new KeyRing({ keys: [{ id, key: randomBytes(32) }], activeKeyId: id });
    const blue = deployment({ namespace: 'blue', keyPrefix, keyRing: ring('blue-key') });
    const green = deployment({ namespace: 'green', keyPrefix, keyRing: ring('green-key') });
    const user = addRandomUser(entra, 'Blue Green Keys');
    const homeAccountId = entra.homeAccountIdOf(user);
    const onBlue = await signIn(blue.app, user);
    await signIn(green.app, user);

    const silent = await blue.app.acquireTokenSilent({ homeAccountId, scopes });
    expect(silent.accessToken).toBe(onBlue.accessToken);
    expect([...blue.corrupt, ...green.corrupt]).toEqual([]);
  });

  it('two client ids on one store keep separate partitions: a sign-out in one app leaves the other signed in', async () => {
    const keyPrefix = `two-apps-${randomUUID()}:`;
    const one = deployment({ keyPrefix, clientId: clients[0]!.clientId });
    const two = deployment({ keyPrefix, clientId: clients[1]!.clientId });
    const written = new Set<string>();
    for (const { cache } of [one, two]) cache.on('cache:write', ({ partitionHash }) => written.add(partitionHash));
    const user = addRandomUser(entra, 'Two Apps');
    const homeAccountId = entra.homeAccountIdOf(user);
    await signIn(one.app, user, clients[0]!.clientId);
    const onTwo = await signIn(two.app, user, clients[1]!.clientId);
    expect(written.size).toBe(2);

    await one.app.removeAccount((await one.app.getAccountByHomeId(homeAccountId))!);

    const silent = await two.app.acquireTokenSilent({ homeAccountId, scopes });
    expect(silent.accessToken).toBe(onTwo.accessToken);
    await expect(one.app.acquireTokenSilent({ homeAccountId, scopes })).rejects.toMatchObject({ errorCode: 'no_account_in_cache' });
  });

  it('plugin() with { clientId } shares the partition of a DistributedClientApplication of that client id, and only that', async () => {
    const keyPrefix = `plugin-client-${randomUUID()}:`;
    const { app, cache } = deployment({ keyPrefix });
    const user = addRandomUser(entra, 'Plugin And App');
    const homeAccountId = entra.homeAccountIdOf(user);
    const signedIn = await signIn(app, user);
    const accountsVia = (cachePlugin: ReturnType<DistributedTokenCache['plugin']>, clientId: string) =>
      new ConfidentialClientApplication({ ...entra.msalConfig(clientId), cache: { cachePlugin } }).getTokenCache().getAllAccounts();

    const same = await accountsVia(cache.plugin(homeAccountId, { clientId: clients[0]!.clientId }), clients[0]!.clientId);
    expect(same.map((account) => account.homeAccountId)).toEqual([signedIn.account!.homeAccountId]);
    expect(await accountsVia(cache.plugin(homeAccountId, { clientId: clients[1]!.clientId }), clients[1]!.clientId)).toEqual([]);
  });
});
