// The L1 in front of Redis, across OS processes (each an app instance with its own L1, on by
// default for @keyv/redis): once a write on one process has resolved, another process never reads
// the older version, through forced refreshes, removeAccount and sign-ins again (the rounds are in
// helpers/l1-coherence-rounds.ts); and not after its tracking connection was killed, Redis paused
// or restarted either. On a Redis Cluster: __tests__/cluster/l1-coherence.test.ts.
import { randomUUID } from 'node:crypto';
import { createClient } from '@keyv/redis';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId, FakeUser } from '../../src/testing';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import type { CallResult } from '../helpers/app-instance-process';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import { coherenceScopes as scopes, l1HitsOf, readOn, signInOn, valueOf, writeThenReadRounds } from '../helpers/l1-coherence-rounds';
import { trackingConnectionIdsIn } from '../helpers/l1-tracking';

const USERS = 8;
const ROUNDS_EACH = 130; // 8 x 130 = 1,040 rounds

interface TokenSummary {
  accessToken: string;
}

describe('L1 coherence across processes', () => {
  let entra: FakeEntraId;

  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  describe('on one Redis, two processes', () => {
    let keyPrefix: string;
    let instances: [AppInstanceProcess, AppInstanceProcess];

    beforeEach(async () => {
      keyPrefix = `l1-coherence-${randomUUID()}:`;
      instances = (await Promise.all([AppInstanceProcess.start(entra, keyPrefix), AppInstanceProcess.start(entra, keyPrefix)])) as [
        AppInstanceProcess,
        AppInstanceProcess,
      ];
    });
    afterEach(async () => {
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    it(`after a write resolves on one process, the other never reads the older version (${USERS * ROUNDS_EACH} rounds: forced refreshes, removeAccount, sign-ins again)`, async () => {
      expect(await writeThenReadRounds(entra, instances, { users: USERS, roundsEach: ROUNDS_EACH, removeEvery: 10 })).toEqual([]);
      // The reads were served by L1 (this claim is about L1, not about reading Redis every time).
      expect((await l1HitsOf(instances)).map((hits) => hits > 0)).toEqual([true, true]);
    }, 180_000);
  });

  describe('on a Redis that fails', () => {
    let redis: RedisServer;
    let raw: ReturnType<typeof createClient>;
    let instances: [AppInstanceProcess, AppInstanceProcess];

    beforeAll(async () => {
      redis = await RedisServer.start();
    });
    afterAll(async () => {
      await redis.stop();
    });
    beforeEach(async () => {
      const keyPrefix = `l1-faults-${randomUUID()}:`;
      const env = { REDIS_URL: redis.url };
      instances = (await Promise.all([
        AppInstanceProcess.start(entra, keyPrefix, env),
        AppInstanceProcess.start(entra, keyPrefix, env),
      ])) as [AppInstanceProcess, AppInstanceProcess];
      raw = createClient({ url: redis.url });
      raw.on('error', () => undefined);
      await raw.connect();
    });
    afterEach(async () => {
      redis.resume();
      raw.destroy();
      await Promise.all(instances.map((instance) => instance.stop()));
    });

    /** Retries a call that may fail while the store reconnects; every answer that succeeds is returned. */
    async function once<T>(call: () => Promise<T>, failed: (value: T) => boolean): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        const value = await call();
        if (!failed(value) || attempt === 20) return value;
      }
    }

    const storeFailed = (result: CallResult): boolean => !result.ok && result.error?.name === 'StoreUnavailableError';

    /** Writer refreshes (or signs in again when the account is gone); the reader then reads. */
    async function writeThenRead(writer: AppInstanceProcess, reader: AppInstanceProcess, user: FakeUser): Promise<void> {
      const homeAccountId = entra.homeAccountIdOf(user);
      const refreshed = await once(() => writer.call('silent', { homeAccountId, scopes, forceRefresh: true }), storeFailed);
      // After a restart the account is gone: the writer signs the user in again instead.
      const current = refreshed.ok ? valueOf<TokenSummary>(refreshed).accessToken : await signInOn(entra, writer, user);
      const read = await once(() => reader.call('silent', { homeAccountId, scopes }), storeFailed);
      expect(valueOf<TokenSummary>(read).accessToken).toBe(current);
    }

    const faults: [string, () => Promise<void>][] = [
      [
        'CLIENT KILL of every tracking connection',
        async () => {
          for (const id of trackingConnectionIdsIn(await raw.sendCommand(['CLIENT', 'LIST'])))
            await raw.sendCommand(['CLIENT', 'KILL', 'ID', id]);
        },
      ],
      [
        'Redis paused (SIGSTOP) while the reader waits, then resumed',
        async () => {
          redis.pause();
          // A read while paused fails at its deadline (or is a miss): L1 is not trusted meanwhile.
          await instances[1].call('silent', { homeAccountId: 'none', scopes });
          redis.resume();
        },
      ],
      [
        'Redis restarted (everything in it lost)',
        async () => {
          await redis.kill();
          await redis.restart();
        },
      ],
    ];

    it.each(faults)('%s: no stale value is served after the connection comes back', async (_name, fault) => {
      const user = addRandomUser(entra, 'L1 Faults');
      const homeAccountId = entra.homeAccountIdOf(user);
      const [writer, reader] = instances;
      const first = await signInOn(entra, writer, user);
      expect(await readOn(reader, homeAccountId)).toBe(first); // in the reader's L1 now
      await fault();
      for (let round = 0; round < 5; round++) await writeThenRead(round % 2 ? reader : writer, round % 2 ? writer : reader, user);
    });
  });
});
