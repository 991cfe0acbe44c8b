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

  it('the storm through the failover: codes claimed with the replica in sync, the primary killed while they are at the token endpoint, 180 duplicates around and after the switch: exactly 1 token call per code, every callback answered', async () => {
    const signIns = await Promise.all(Array.from({ length: CODES }, () => newPkceSignIn(entra, redirectUri)));
    const codes = new Set(signIns.map(({ code }) => code));
    let atTokenEndpoint = 0;
    const allSent = new Promise<void>((resolve) =>
      entra.on('token-request', () => {
        if (++atTokenEndpoint === CODES) resolve();
      }),
    );
    entra.tokenLatencyMs = 500;
    const around = storm(signIns, 4);
    await allSent; // every code claimed (durably) and at the token endpoint
    pair.cutReplication(); // what the old primary writes from now on is lost
    await pair.failover();
    const after = storm(signIns, 5);
    const results = [...(await around), ...(await after)];

    for (const code of codes) expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results).toHaveLength(CODES * 9);
    for (const { signIn, result } of results) {
      if (result.status === 'fulfilled') expect(result.value!.homeAccountId).toBe(entra.homeAccountIdOf(signIn.user));
      else expect(result.reason).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
    }
  });

  it('a replica that never acknowledges: every callback refused with ERR_STORE_UNAVAILABLE (fail-closed), no code sent', async () => {
    const signIns = await Promise.all(Array.from({ length: 5 }, () => newPkceSignIn(entra, redirectUri)));
    const callsBefore = entra.tokenCallCount({ grantType: 'authorization_code' });
    pair.cutReplication();
    const results = await storm(signIns, 4);
    for (const { result } of results) expect(result).toMatchObject({ status: 'rejected', reason: { code: 'ERR_STORE_UNAVAILABLE' } });
    expect(entra.tokenCallCount({ grantType: 'authorization_code' })).toBe(callsBefore);
  });
});
