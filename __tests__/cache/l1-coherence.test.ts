// The L1 in front of Redis, across OS processes (each an app instance with its own L1, on by
// default for @keyv/redis): once a write on one process has resolved, another process never reads
// the older version, through forced refreshes, removeAccount and sign-ins again; and not after its
// tracking connection was killed, Redis paused or restarted either. The parent relays "the write
// resolved" to the reader (IPC through the parent, as a load balancer or a user would).
import { randomUUID } from 'node:crypto';
import { createClient } from '@keyv/redis';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId, FakeUser } from '../../src/testing';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import type { CallResult } from '../helpers/app-instance-process';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import { trackingConnectionIdsIn } from '../helpers/l1-tracking';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const USERS = 8;
const ROUNDS_EACH = 130; // 8 x 130 = 1,040 rounds
const REMOVE_EVERY = 10;

interface TokenSummary {
  accessToken: string;
  fromCache: boolean;
  homeAccountId: string;
}

function valueOf<T>(result: CallResult): T {
  if (!result.ok) throw new Error(`call failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}

describe('L1 coherence across processes', () => {
  let entra: FakeEntraId;

  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  /** Signs `user` in on `instance` and returns the access token it got. */
  async function signIn(instance: AppInstanceProcess, user: FakeUser): Promise<string> {
    const result = await instance.call('signIn', { code: entra.mintCode({ redirectUri, user }), redirectUri, scopes });
    return valueOf<TokenSummary>(result).accessToken;
  }

  /** What `reader` serves for the account now: its access token, or null when it has no account. */
  async function readOn(reader: AppInstanceProcess, homeAccountId: string): Promise<string | null> {
    const result = await reader.call('silent', { homeAccountId, scopes });
    if (!result.ok && result.error?.errorCode === 'no_account_in_cache') return null;
    const token = valueOf<TokenSummary>(result);
    expect(token.fromCache).toBe(true);
    return token.accessToken;
  }

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
      const mismatches: string[] = [];

      async function rounds(user: FakeUser, index: number): Promise<void> {
        const homeAccountId = entra.homeAccountIdOf(user);
        let current: string | null = await signIn(instances[index % 2]!, user);
        for (let round = 0; round < ROUNDS_EACH; round++) {
          const writer = instances[(index + round) % 2]!;
          const reader = instances[(index + round + 1) % 2]!;
          const before = await readOn(reader, homeAccountId); // the reader holds the current version
          if (before !== current) mismatches.push(`user ${index} round ${round}: before the write`);
          if (current === null) {
            current = await signIn(writer, user);
          } else if (round % REMOVE_EVERY === REMOVE_EVERY - 1) {
            expect(valueOf(await writer.call('remove', { homeAccountId }))).toEqual({ removed: true });
            current = null;
          } else {
            const refreshed = valueOf<TokenSummary>(await writer.call('silent', { homeAccountId, scopes, forceRefresh: true }));
            expect(refreshed.accessToken).not.toBe(current);
            current = refreshed.accessToken;
          }
          // The write resolved on the writer; now the reader:
          const after = await readOn(reader, homeAccountId);
          if (after !== current) mismatches.push(`user ${index} round ${round}: read ${after === null ? 'no account' : 'an older token'}`);
        }
      }

      await Promise.all(Array.from({ length: USERS }, (_, index) => rounds(addRandomUser(entra, 'L1 Coherence'), index)));
      expect(mismatches).toEqual([]);
      // The reads were served by L1 (this claim is about L1, not about reading Redis every time).
      const stats = await Promise.all(instances.map(async (instance) => valueOf<{ l1Hits: number }>(await instance.call('readStats', {}))));
      expect(stats.map((each) => each.l1Hits > 0)).toEqual([true, true]);
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
      const current = refreshed.ok ? valueOf<TokenSummary>(refreshed).accessToken : await signIn(writer, user);
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
      const first = await signIn(writer, user);
      expect(await readOn(reader, homeAccountId)).toBe(first); // in the reader's L1 now
      await fault();
      for (let round = 0; round < 5; round++) await writeThenRead(round % 2 ? reader : writer, round % 2 ? writer : reader, user);
    });
  });
});
