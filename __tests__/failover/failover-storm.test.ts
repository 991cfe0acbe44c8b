// Issue 18: a managed Redis fails over to its replica, and replication is asynchronous. A claim the
// old primary acknowledged but never passed on is gone after the failover; the code must still go
// to the token endpoint exactly once. Four OS processes share one endpoint in front of a primary
// and a replica (RedisReplicaPair); the replication link is cut, so writes are really lost.
import { randomUUID } from 'node:crypto';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import type { CallResult } from '../helpers/app-instance-process';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import { RedisReplicaPair } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const PROCESSES = 4;
const CODES = 20;

interface Settled {
  status: 'fulfilled' | 'rejected';
  value?: { accessToken: string; homeAccountId: string };
  reason?: { code?: string; errorNo?: string; message?: string };
}

type SignIn = Awaited<ReturnType<typeof newPkceSignIn>>;

describe('a Redis failover with unreplicated writes, 4 processes', () => {
  let entra: FakeEntraId;
  let pair: RedisReplicaPair;
  let instances: AppInstanceProcess[];

  beforeEach(async () => {
    entra = await startFakeEntraId();
    pair = await RedisReplicaPair.start();
    const keyPrefix = `failover-${randomUUID()}:`;
    instances = await Promise.all(
      Array.from({ length: PROCESSES }, () => AppInstanceProcess.start(entra, keyPrefix, { REDIS_URL: pair.url, LEASE_MS: '3000' })),
    );
    // Every process connected while the replica was in sync, as in production before a failover.
    await Promise.all(
      instances.map(async (instance) => {
        const { code, verifier } = await newPkceSignIn(entra, redirectUri);
        expect(await instance.call('signIn', redeemArgs(code, verifier))).toMatchObject({ ok: true });
      }),
    );
  });
  afterEach(async () => {
    pair.restoreReplication();
    await Promise.all(instances.map((instance) => instance.stop()));
    await pair.stop();
    await entra.close();
  });

  const redeemArgs = (code: string, verifier: string) => ({ code, redirectUri, scopes: ['User.Read'], codeVerifier: verifier });

  /** `perCode` duplicates of every sign-in, spread round-robin over the processes, all at once. */
  async function storm(signIns: SignIn[], perCode: number): Promise<{ signIn: SignIn; result: Settled }[]> {
    const calls = signIns.flatMap((signIn) => Array.from({ length: perCode }, () => signIn));
    const shares: SignIn[][] = instances.map(() => []);
    calls.forEach((call, index) => shares[index % PROCESSES]!.push(call));
    const replies: CallResult[] = await Promise.all(
      instances.map((instance, index) =>
        instance.call('all', { calls: shares[index]!.map(({ code, verifier }) => ({ op: 'signIn', args: redeemArgs(code, verifier) })) }),
      ),
    );
    return replies.flatMap((reply, index) => (reply.value as Settled[]).map((result, at) => ({ signIn: shares[index]![at]!, result })));
  }

  it('claims acknowledged only by the old primary: after the failover every code is still sent exactly once, and callbacks after it get tokens', async () => {
    const signIns = await Promise.all(Array.from({ length: CODES }, () => newPkceSignIn(entra, redirectUri)));
    pair.cutReplication();
    const before = await storm(signIns, 4); // claims (and outcomes) the replica never sees
    for (const { result } of before) {
      if (result.status === 'rejected') expect(result.reason).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
    }

    await pair.failover();
    const after = await storm(signIns, 5);

    for (const { code } of signIns) expect(entra.tokenCallCount({ code })).toBe(1);
    for (const { signIn, result } of after) {
      expect(result).toMatchObject({ status: 'fulfilled', value: { homeAccountId: entra.homeAccountIdOf(signIn.user) } });
    }
  });
});
