// Guarantees 1 and 2 across OS processes: duplicate callbacks for one code, spread over 4 app
// instances sharing Redis, cause exactly one token-endpoint call and all get tokens. The same
// storm on plain ConfidentialClientApplication instances shows the AADSTS54005 failures.
import { randomUUID } from 'node:crypto';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import type { CallResult } from '../helpers/app-instance-process';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const PROCESSES = 4;

interface Settled {
  status: 'fulfilled' | 'rejected';
  value?: { accessToken: string; homeAccountId: string };
  reason?: { code?: string; errorNo?: string; errorMessage?: string };
}

describe('duplicate storms over 4 processes', () => {
  let entra: FakeEntraId;
  let instances: AppInstanceProcess[];

  beforeAll(async () => {
    entra = await startFakeEntraId();
    const keyPrefix = `storm-${randomUUID()}:`;
    instances = await Promise.all(Array.from({ length: PROCESSES }, () => AppInstanceProcess.start(entra, keyPrefix)));
  });
  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await entra.close();
  });

  const newSignIn = () => newPkceSignIn(entra, redirectUri, 'Storm User');

  /** Sends `calls` round-robin over the processes, each process running its share at once. */
  async function spread(calls: { op: string; args: Record<string, unknown> }[]): Promise<Settled[]> {
    const shares: (typeof calls)[] = instances.map(() => []);
    calls.forEach((call, index) => shares[index % PROCESSES]!.push(call));
    const replies: CallResult[] = await Promise.all(instances.map((instance, index) => instance.call('all', { calls: shares[index]! })));
    return replies.flatMap((reply) => reply.value as Settled[]);
  }

  const redeemCall = (op: string, code: string, verifier: string) => ({
    op,
    args: { code, redirectUri, scopes: ['User.Read'], codeVerifier: verifier },
  });
  const is54005 = (settled: Settled): boolean =>
    Number(settled.reason?.errorNo) === 54005 || /AADSTS54005/.test(settled.reason?.errorMessage ?? '');

  it('50 concurrent duplicates of one code: one token-endpoint call, 50 results with tokens for the right account, no AADSTS54005', async () => {
    const { user, code, verifier } = await newSignIn();
    const results = await spread(Array.from({ length: 50 }, () => redeemCall('signIn', code, verifier)));
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(50);
    expect(new Set(results.map((result) => result.value?.homeAccountId))).toEqual(new Set([entra.homeAccountIdOf(user)]));
    expect(results.some(is54005)).toBe(false);
  });

  it('20 codes at once, 50 duplicates each over 4 processes: one token-endpoint call per code, every duplicate gets its own account', async () => {
    const signIns = await Promise.all(Array.from({ length: 20 }, newSignIn));
    const calls = signIns.flatMap(({ code, verifier }) => Array.from({ length: 50 }, () => redeemCall('signIn', code, verifier)));
    const results = await spread(calls);
    for (const { code } of signIns) expect(entra.tokenCallCount({ code })).toBe(1);
    const expectedAccount = new Map(signIns.map(({ code, user }) => [code, entra.homeAccountIdOf(user)]));
    const sharesOf = instances.map(() => [] as typeof calls);
    calls.forEach((call, index) => sharesOf[index % PROCESSES]!.push(call));
    const orderedCalls = sharesOf.flat();
    results.forEach((result, index) => {
      expect(result.status).toBe('fulfilled');
      expect(result.value!.homeAccountId).toBe(expectedAccount.get(orderedCalls[index]!.args.code as string));
    });
  });

  it('a late duplicate, after the first redemption finished, gets tokens with no token-endpoint call', async () => {
    const { user, code, verifier } = await newSignIn();
    await instances[0]!.call('signIn', redeemCall('signIn', code, verifier).args);
    const callsBefore = entra.tokenCallCount();
    const late = await instances[3]!.call('signIn', redeemCall('signIn', code, verifier).args);
    expect(late.value).toMatchObject({ homeAccountId: entra.homeAccountIdOf(user) });
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it.each([
    ['a wrong verifier', 'not-the-verifier'],
    ['no verifier or binding', undefined],
  ])('a duplicate with %s gets ERR_CODE_ALREADY_REDEEMED and no tokens', async (_name, verifier) => {
    const { code, verifier: right } = await newSignIn();
    await instances[0]!.call('signIn', redeemCall('signIn', code, right).args);
    const { codeVerifier: _omitted, ...withoutVerifier } = redeemCall('signIn', code, right).args;
    const duplicate = await instances[1]!.call(
      'signIn',
      verifier === undefined ? withoutVerifier : { ...withoutVerifier, codeVerifier: verifier },
    );
    expect(duplicate).toMatchObject({ ok: false, error: { code: 'ERR_CODE_ALREADY_REDEEMED' } });
    expect(duplicate.value).toBeUndefined();
    expect(entra.tokenCallCount({ code })).toBe(1);
  });

  it('for comparison, the same storm on plain ConfidentialClientApplication instances gets AADSTS54005', async () => {
    const { code, verifier } = await newSignIn();
    const results = await spread(Array.from({ length: 50 }, () => redeemCall('plainSignIn', code, verifier)));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter(is54005)).toHaveLength(49);
    expect(entra.tokenCallCount({ code })).toBe(50);
  });

  it('in-process redemption state is empty again in every process afterwards', async () => {
    for (const instance of instances) expect((await instance.call('state', {})).value).toEqual({ redemptionsInFlight: 0, waitingKeys: 0 });
  });
});
