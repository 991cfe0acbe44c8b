// A duplicate storm while Redis (token store and lock store) is killed or paused: every call
// settles, with tokens or a typed error, no code is sent twice, and the same instances work
// again once Redis is back.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, MsalDistributedCacheError, RedisLockStore } from '../../src';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const INSTANCES = 4;
const DUPLICATES = 20;

describe('duplicate storm while Redis fails', () => {
  let entra: FakeEntraId;
  let redis: RedisServer;
  let apps: DistributedClientApplication[];

  beforeEach(async () => {
    entra = await startFakeEntraId();
    redis = await RedisServer.start();
    const keyPrefix = `storm-faults-${randomUUID()}:`;
    // Each instance with its own connections, as separate processes would have.
    apps = Array.from({ length: INSTANCES }, () => {
      const cache = new DistributedTokenCache({
        store: new Keyv({ store: new KeyvRedis(redis.url, { throwOnConnectError: true, connectionTimeout: 300 }) }),
        lockStore: new RedisLockStore({ url: redis.url, keyPrefix, commandTimeoutMs: 300 }),
        keyPrefix,
        storeTimeoutMs: 300,
      });
      return new DistributedClientApplication(entra.msalConfig(), { cache, redeem: { leaseMs: 1000, waitTimeoutMs: 5000 } });
    });
  });
  afterEach(async () => {
    redis.resume();
    await Promise.all(apps.map((app) => app.cache.close()));
    await redis.stop();
    await entra.close();
  });

  async function storm(code: string, verifier: string): Promise<PromiseSettledResult<unknown>[]> {
    return Promise.allSettled(
      Array.from({ length: DUPLICATES }, (_, index) =>
        apps[index % INSTANCES]!.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier }),
      ),
    );
  }

  function expectTypedOrTokens(results: PromiseSettledResult<unknown>[]): void {
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(MsalDistributedCacheError);
      else expect(result.value).toMatchObject({ accessToken: expect.any(String) });
    }
  }

  it.each([
    ['killed', (server: RedisServer) => server.kill(), (server: RedisServer) => server.restart()],
    ['paused (SIGSTOP) past every timeout', async (server: RedisServer) => server.pause(), async (server: RedisServer) => server.resume()],
  ])(
    'Redis %s mid-storm: every call settles with tokens or a typed error, the code is sent at most once, and the instances recover',
    async (_fault, fail, recover) => {
      await apps[0]!.acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] }); // connected
      entra.tokenLatencyMs = 200;
      const { code, verifier } = await newPkceSignIn(entra, redirectUri);
      const arrived = new Promise<void>((resolve) => entra.once('token-request', () => resolve()));
      const results = storm(code, verifier);
      await arrived; // the winner's request is at the token endpoint
      await fail(redis);
      expectTypedOrTokens(await results);
      expect(entra.tokenCallCount({ code })).toBeLessThanOrEqual(1);

      entra.tokenLatencyMs = 0;
      await recover(redis);
      // The same instances work again once Redis answers; node-redis reconnects in the background,
      // so the first storms after a restart may still meet ERR_STORE_UNAVAILABLE (bounded retries).
      let recovered: PromiseSettledResult<unknown>[] = [];
      for (let round = 0; round < 50; round++) {
        const next = await newPkceSignIn(entra, redirectUri);
        recovered = await storm(next.code, next.verifier);
        expectTypedOrTokens(recovered);
        expect(entra.tokenCallCount({ code: next.code })).toBeLessThanOrEqual(1);
        if (recovered.every((result) => result.status === 'fulfilled')) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(recovered.filter((result) => result.status === 'fulfilled')).toHaveLength(DUPLICATES);
    },
  );
});
