// PostgreSQL as the one shared store (issue 17), across OS processes and with no Redis at all:
// 4 app instances, each its own process with its own pools (@keyv/postgres for the token cache,
// PostgresLockStore for redeem-once and fleet single flight), sharing only a PostgreSQL started by
// the test. The children get no REDIS_URL (the fixture would throw if it reached for Redis).
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { PostgresServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { addRandomUser, newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import { expectOneToken, Fleet, inRefreshWindow, isInvalidGrant, stormInOneFlight } from '../helpers/fleet';
import type { Settled } from '../helpers/fleet';
import type { AppInstanceProcess, CallResult } from '../helpers/app-instance-process';

const redirectUri = 'https://app.example.test/auth/callback';
const PROCESSES = 4;
const scopes = ['User.Read'];

/** Both stores on `postgres`, and nothing that could reach the Redis of the test run. */
const postgresOnly = (postgres: PostgresServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  POSTGRES_URL: postgres.url,
  REDIS_URL: undefined,
  LOCK_REDIS_URL: undefined,
  REDIS_CLUSTER_NODES: undefined,
  ...extra,
});

/** Pids of the redis-server processes whose parent is one of `parents`. */
function redisServersStartedBy(parents: number[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces, so read from the last ')'.
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (name.startsWith('redis-server') && parents.includes(ppid)) pids.push(Number(entry));
  }
  return pids;
}

const is54005 = (result: Settled): boolean =>
  Number(result.reason?.errorNo) === 54005 || /AADSTS54005/.test(`${result.reason?.message ?? ''}`);

/** `instance.call(op, args)`, failing (not hanging) if the process exits first. */
async function callOrExit(instance: AppInstanceProcess, op: string, args: Record<string, unknown>): Promise<CallResult> {
  const exited = instance.exited.then(() => {
    const { stderr } = instance as unknown as { stderr: string }; // private to the helper: read for the message only
    throw new Error(`app instance ${instance.pid} exited during ${op}: ${stderr.slice(0, 1500)}`);
  });
  return Promise.race([instance.call(op, args), exited]);
}

/** Runs every redemption at once, redemption `i` in process `i % 4`; the outcomes in the redemptions' order. */
async function spread(fleet: Fleet, redemptions: { code: string; verifier: string }[]): Promise<Settled[]> {
  const shares = fleet.instances.map(() => [] as number[]);
  redemptions.forEach((_redemption, index) => shares[index % fleet.instances.length]!.push(index));
  const replies = await Promise.all(
    fleet.instances.map((instance, which) =>
      callOrExit(instance, 'all', {
        calls: shares[which]!.map((index) => ({
          op: 'signIn',
          args: { code: redemptions[index]!.code, redirectUri, scopes, codeVerifier: redemptions[index]!.verifier },
        })),
      }),
    ),
  );
  const results: Settled[] = [];
  replies.forEach((reply, which) => {
    if (!reply.ok) throw new Error(`process ${which} failed the storm: ${JSON.stringify(reply.error)}`);
    (reply.value as Settled[]).forEach((settled, position) => (results[shares[which]![position]!] = settled));
  });
  return results;
}

describe(`${PROCESSES} app instances in ${PROCESSES} OS processes on PostgreSQL only, no Redis`, () => {
  let postgres: PostgresServer;
  let entra: FakeEntraId;
  let fleet: Fleet;
  let redisBefore: number[];

  beforeAll(async () => {
    redisBefore = redisServersStartedBy([process.pid]); // the jest global setup's, when it runs in this process
    postgres = await PostgresServer.start();
    entra = await startFakeEntraId();
    fleet = await Fleet.start(entra, PROCESSES, `pg-fleet-${randomUUID()}:`, postgresOnly(postgres));
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    await entra?.close();
    await postgres?.stop();
  });

  it(`the ${PROCESSES} app instances are ${PROCESSES} OS processes`, () => {
    expect(new Set([process.pid, ...fleet.instances.map((instance) => instance.pid)]).size).toBe(PROCESSES + 1);
  });

  it('50 concurrent duplicates of one code: one token-endpoint call, 50 results with tokens for the right account, no AADSTS54005', async () => {
    const { user, code, verifier } = await newPkceSignIn(entra, redirectUri, 'Postgres Storm User');
    const results = await spread(
      fleet,
      Array.from({ length: 50 }, () => ({ code, verifier })),
    );
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.some(is54005)).toBe(false);
    expect(results.filter((result) => result.status !== 'fulfilled')).toEqual([]);
    expect(new Set(results.map((result) => result.value!.homeAccountId))).toEqual(new Set([entra.homeAccountIdOf(user)]));
  });

  it('20 codes at once, 25 duplicates each: one token-endpoint call per code, every duplicate gets its own account', async () => {
    const signIns = await Promise.all(Array.from({ length: 20 }, () => newPkceSignIn(entra, redirectUri, 'Postgres Storm User')));
    const redemptions = signIns.flatMap((signIn) => Array.from({ length: 25 }, () => signIn));
    const results = await spread(fleet, redemptions);
    for (const { code } of signIns) expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.some(is54005)).toBe(false);
    expect(results).toHaveLength(redemptions.length);
    results.forEach((result, index) => {
      expect(result.status).toBe('fulfilled');
      expect(result.value!.homeAccountId).toBe(entra.homeAccountIdOf(redemptions[index]!.user));
    });
  });

  it('a late duplicate, after the first redemption finished in another process, gets tokens with no token-endpoint call', async () => {
    const { user, code, verifier } = await newPkceSignIn(entra, redirectUri, 'Postgres Late User');
    const first = await fleet.instances[0]!.call('signIn', { code, redirectUri, scopes, codeVerifier: verifier });
    expect(first.ok).toBe(true);
    const callsBefore = entra.tokenCallCount();
    const late = await fleet.instances[3]!.call('signIn', { code, redirectUri, scopes, codeVerifier: verifier });
    expect(late).toMatchObject({ ok: true, value: { homeAccountId: entra.homeAccountIdOf(user), accessToken: expect.any(String) } });
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it(`no lost updates: ${PROCESSES} processes x 10 distinct scopes for one user, at once: all ${PROCESSES * 10} access tokens survive`, async () => {
    const user = addRandomUser(entra, 'Postgres Lost Updates');
    const homeAccountId = entra.homeAccountIdOf(user);
    expect((await fleet.instances[0]!.call('signIn', { code: entra.mintCode({ redirectUri, user }), redirectUri, scopes })).ok).toBe(true);
    const scopesOf = (process: number): string[] =>
      Array.from({ length: 10 }, (_, index) => `https://p${process}.example.test/scope${index}`);
    const replies = await Promise.all(
      fleet.instances.map((instance, process) =>
        instance.call('all', { calls: scopesOf(process).map((scope) => ({ op: 'silent', args: { homeAccountId, scopes: [scope] } })) }),
      ),
    );
    const settled = replies.flatMap((reply) => reply.value as Settled[]);
    expect(settled.filter((each) => each.status !== 'fulfilled')).toEqual([]);
    expect(settled).toHaveLength(PROCESSES * 10);

    // Every one of the 40 is now answered from the shared cache, by a process that did not write it.
    const callsBefore = entra.tokenCallCount();
    for (let process = 0; process < PROCESSES; process++) {
      const reader = fleet.instances[(process + 1) % PROCESSES]!;
      for (const scope of scopesOf(process))
        expect((await reader.call('silent', { homeAccountId, scopes: [scope] })).value).toMatchObject({ fromCache: true, homeAccountId });
    }
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it('isolation: two users signed in at once in every process never get each other\u2019s tokens, and removing one leaves the other', async () => {
    const users = [addRandomUser(entra, 'Postgres Alice'), addRandomUser(entra, 'Postgres Bob')];
    const signIns = await Promise.all(
      users.map((user, index) =>
        fleet.instances[index]!.call('signIn', { code: entra.mintCode({ redirectUri, user }), redirectUri, scopes }),
      ),
    );
    const tokens = signIns.map((signIn) => (signIn.value as { accessToken: string }).accessToken);
    const ids = users.map((user) => entra.homeAccountIdOf(user));
    const reads = await fleet.storm('silent', (call) => ({ homeAccountId: ids[call % 2], scopes }), 10);
    reads.forEach((read, index) => {
      const which = (index % 10) % 2;
      expect(read.value).toMatchObject({ homeAccountId: ids[which], accessToken: tokens[which], fromCache: true });
    });
    expect((await fleet.instances[2]!.call('remove', { homeAccountId: ids[0] })).value).toEqual({ removed: true });
    expect((await fleet.instances[3]!.call('account', { homeAccountId: ids[0] })).value).toBeNull();
    expect((await fleet.instances[1]!.call('silent', { homeAccountId: ids[1], scopes })).value).toMatchObject({
      homeAccountId: ids[1],
      accessToken: tokens[1],
    });
  });

  it(`refresh single flight: ${PROCESSES} x 25 acquireTokenSilent for one user in the refresh window, strict rotation: 1 refresh call, 100 results with one new access token`, async () => {
    // A refresh token is good once (a reuse is refused with invalid_grant): two refreshes would show.
    entra.strictRefreshTokenRotation = true;
    try {
      await refreshStorm();
    } finally {
      entra.strictRefreshTokenRotation = false;
    }
  });

  async function refreshStorm(): Promise<void> {
    const user = addRandomUser(entra, 'Postgres Flight User');
    const homeAccountId = entra.homeAccountIdOf(user);
    const signIn = await inRefreshWindow(entra, () =>
      fleet.instances[0]!.call('signIn', { code: entra.mintCode({ redirectUri, user }), redirectUri, scopes }),
    );
    const { accessToken } = signIn.value as { accessToken: string };
    await fleet.flightStats(); // counters from here on
    const before = entra.tokenCallCount({ grantType: 'refresh_token' });
    const results = await stormInOneFlight(entra, fleet.instances, 'refresh_token', () =>
      fleet.storm('silent', () => ({ homeAccountId, scopes, correlationId: randomUUID() }), 25),
    );
    expect(entra.tokenCallCount({ grantType: 'refresh_token' }) - before).toBe(1);
    expect(results.filter(isInvalidGrant)).toEqual([]);
    expect(expectOneToken(results, PROCESSES * 25)).not.toBe(accessToken);
    expect(await fleet.flightStats()).toEqual({
      held: 1,
      waitedOk: PROCESSES - 1,
      waitedFailed: 0,
      takenOver: 0,
      uncoordinated: 0,
      lockErrorsIgnored: 0,
      lockErrorsThrown: 0,
    });
  }

  it('no redis-server was started by this test or its app instances', () => {
    expect(redisServersStartedBy([process.pid, ...fleet.instances.map((instance) => instance.pid)])).toEqual(redisBefore);
  });
});

describe(`PostgreSQL killed and restarted in the middle of a duplicate storm over ${PROCESSES} processes`, () => {
  let postgres: PostgresServer;
  let entra: FakeEntraId;
  let fleet: Fleet;
  let redisBefore: number[];

  beforeAll(async () => {
    redisBefore = redisServersStartedBy([process.pid]);
    postgres = await PostgresServer.start();
    entra = await startFakeEntraId();
    fleet = await Fleet.start(
      entra,
      PROCESSES,
      `pg-restart-${randomUUID()}:`,
      // PG_IDLE_TIMEOUT_MS: @keyv/postgres's own pool (used only to create Keyv's table) closes its idle
      // client at once; left open, its lost connection would end the process (docs/postgres.md, "Restarts").
      postgresOnly(postgres, { STORE_TIMEOUT_MS: '500', LOCK_COMMAND_TIMEOUT_MS: '500', LEASE_MS: '1000', PG_IDLE_TIMEOUT_MS: '1' }),
    );
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
    await entra?.close();
    await postgres?.stop();
  });

  /** Tokens, or a typed error of this library saying the store did not answer. */
  function expectTokensOrStoreUnavailable(results: Settled[]): void {
    for (const result of results) {
      if (result.status === 'fulfilled') expect(result.value!.accessToken).toEqual(expect.any(String));
      else expect(result.reason).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    }
  }

  it('every call settles with tokens or ERR_STORE_UNAVAILABLE, no code is sent twice, and after the restart new sign-ins work in every process', async () => {
    // Every process connected (and its tables there) before the fault.
    for (const instance of fleet.instances) {
      const { code, verifier } = await newPkceSignIn(entra, redirectUri);
      expect((await instance.call('signIn', { code, redirectUri, scopes, codeVerifier: verifier })).ok).toBe(true);
    }
    const signIns = await Promise.all(Array.from({ length: 5 }, () => newPkceSignIn(entra, redirectUri)));
    const release = entra.holdTokenResponses();
    const arrived = new Promise<void>((resolve) => entra.once('token-request', () => resolve()));
    const storm = spread(
      fleet,
      signIns.flatMap((signIn) => Array.from({ length: 8 }, () => signIn)),
    );
    await arrived; // a holder's request is at the token endpoint, its duplicates waiting
    await postgres.kill();
    release();
    const results = await storm;
    expect(results).toHaveLength(40);
    expectTokensOrStoreUnavailable(results);
    for (const { code } of signIns) expect(entra.tokenCallCount({ code })).toBeLessThanOrEqual(1);
    expect(results.filter((result) => result.status === 'rejected').length).toBeGreaterThan(0); // the fault was felt

    await postgres.restart();
    for (const instance of fleet.instances) {
      const { user, code, verifier } = await newPkceSignIn(entra, redirectUri);
      const signIn = await instance.call('signIn', { code, redirectUri, scopes, codeVerifier: verifier });
      expect(signIn).toMatchObject({ ok: true, value: { homeAccountId: entra.homeAccountIdOf(user) } });
      expect(entra.tokenCallCount({ code })).toBe(1);
    }
    const { code, verifier } = await newPkceSignIn(entra, redirectUri);
    const after = await spread(
      fleet,
      Array.from({ length: 20 }, () => ({ code, verifier })),
    );
    expect(after.filter((result) => result.status !== 'fulfilled')).toEqual([]);
    expect(entra.tokenCallCount({ code })).toBe(1);
  });

  it('no redis-server was started by this test or its app instances', () => {
    expect(redisServersStartedBy([process.pid, ...fleet.instances.map((instance) => instance.pid)])).toEqual(redisBefore);
  });
});
