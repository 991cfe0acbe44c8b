// Partition isolation: 200 users signing in and refreshing at once through ONE application never
// see each other's tokens, because every operation runs in an MSAL client bound to one partition.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, PartitionKey } from '../../src';
import { startFakeEntraId } from '../helpers/entra';
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
            (await raw.hGet(`${keyPrefix}cache:{${PartitionKey.forAccount(homeAccountId).hash}}`, 'cache'))!,
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
