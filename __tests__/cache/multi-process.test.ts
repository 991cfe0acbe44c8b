// Claims about several app instances, tested with several OS processes sharing Redis.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache } from '../../src';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId, FakeUser } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const PROCESSES = 4;
const SCOPES_EACH = 10;

describe('several processes sharing one Redis', () => {
  let entra: FakeEntraId;
  let keyPrefix: string;
  let instances: AppInstanceProcess[];
  let local: { app: DistributedClientApplication; cache: DistributedTokenCache };

  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());
  beforeEach(async () => {
    keyPrefix = `multi-${randomUUID()}:`;
    instances = await Promise.all(Array.from({ length: PROCESSES }, () => AppInstanceProcess.start(entra, keyPrefix)));
    const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) }), keyPrefix });
    local = { cache, app: new DistributedClientApplication(entra.msalConfig(), { cache }) };
  });
  afterEach(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await local.cache.close();
  });

  const newUser = (): FakeUser => addRandomUser(entra, 'Multi Process');

  it(`no lost updates: ${PROCESSES} processes, one user, ${SCOPES_EACH} distinct scopes each, at once: all ${PROCESSES * SCOPES_EACH} access tokens survive`, async () => {
    const user = newUser();
    const homeAccountId = entra.homeAccountIdOf(user);
    await local.app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });
    const scopesOf = (process: number): string[] =>
      Array.from({ length: SCOPES_EACH }, (_, index) => `https://p${process}.example.test/scope${index}`);

    const results = await Promise.all(
      instances.map((instance, process) =>
        instance.call('all', { calls: scopesOf(process).map((scope) => ({ op: 'silent', args: { homeAccountId, scopes: [scope] } })) }),
      ),
    );
    for (const result of results) {
      expect(result.ok).toBe(true);
      expect((result.value as { status: string }[]).map((entry) => entry.status)).toEqual(Array(SCOPES_EACH).fill('fulfilled'));
    }

    const callsBefore = entra.tokenCallCount();
    for (let process = 0; process < PROCESSES; process++) {
      for (const scope of scopesOf(process)) {
        expect((await local.app.acquireTokenSilent({ homeAccountId, scopes: [scope] })).fromCache).toBe(true);
      }
    }
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it(`Edge 12: contention never fails a caller: ${PROCESSES} processes x 25 client-credential calls at once, nothing cached, all write the app partition`, async () => {
    const callsEach = 25;
    // A resource of its own per call: nothing cached for any, and no two calls share a token
    // request (equal calls are sent once for the fleet: see __tests__/flight), so all 100 write.
    const run = randomUUID();
    const results = await Promise.all(
      instances.map((instance, process) =>
        instance.call('all', {
          calls: Array.from({ length: callsEach }, (_, call) => ({
            op: 'clientCredential',
            args: { scopes: [`https://contention-${run}-${process}-${call}.example.test/.default`] },
          })),
        }),
      ),
    );
    const settled = results.flatMap((result) => result.value as { status: string; reason?: { code?: string; message?: string } }[]);
    expect(settled.filter((entry) => entry.status !== 'fulfilled')).toEqual([]);
    expect(settled).toHaveLength(PROCESSES * callsEach);

    // The events still tell what happened: every lost compare-and-set round is one 'cache:conflict',
    // and counts as one more attempt of the write that finally landed.
    const stats = await Promise.all(instances.map(async (instance) => (await instance.call('writeStats', {})).value));
    const total = (stats as { writes: number; attempts: number; conflicts: number }[]).reduce((sum, each) => ({
      writes: sum.writes + each.writes,
      attempts: sum.attempts + each.attempts,
      conflicts: sum.conflicts + each.conflicts,
    }));
    expect(total.writes).toBe(PROCESSES * callsEach);
    expect(total.attempts - total.writes).toBe(total.conflicts);
  });

  it('tokens written by one process are used by another without a token-endpoint call', async () => {
    const user = newUser();
    const homeAccountId = entra.homeAccountIdOf(user);
    const signIn = await instances[0]!.call('signIn', { code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });
    expect(signIn.ok).toBe(true);
    const callsBefore = entra.tokenCallCount();
    const silent = await instances[1]!.call('silent', { homeAccountId, scopes: ['User.Read'] });
    expect(silent.value).toMatchObject({
      fromCache: true,
      homeAccountId,
      accessToken: (signIn.value as { accessToken: string }).accessToken,
    });
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  // Each racing write read the partition before the removal (its refresh is held at the fake
  // until the removal has landed), so merging it must not bring the account back. A write that
  // lands between the removal's read and its write is kept by design (a removal removes only what
  // it saw): that case is "Edge 11" in store-contract.test.ts and merge.test.ts.
  it('a removal is not undone by writes from other processes that read the partition before it', async () => {
    const user = newUser();
    const homeAccountId = entra.homeAccountIdOf(user);
    await local.app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });
    const racing = (PROCESSES - 1) * 5;
    const release = entra.holdTokenResponses();
    const allHeld = new Promise<void>((resolve) => {
      let arrived = 0;
      const onRequest = (): void => {
        if (++arrived < racing) return;
        entra.off('token-request', onRequest);
        resolve();
      };
      entra.on('token-request', onRequest);
    });
    const writes = instances.slice(1).map((instance, index) =>
      instance.call('all', {
        calls: Array.from({ length: 5 }, (_, scope) => ({
          op: 'silent',
          args: { homeAccountId, scopes: [`https://race${index}.example.test/s${scope}`] },
        })),
      }),
    );
    await allHeld; // every racing call has read the partition and waits for its refresh
    const removal = await instances[0]!.call('remove', { homeAccountId });
    expect(removal.ok).toBe(true);
    release();
    await Promise.all(writes);
    expect(await local.app.getAccountByHomeId(homeAccountId)).toBeNull();
    await expect(local.app.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] })).rejects.toThrow();
  });
});
