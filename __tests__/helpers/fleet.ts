// A fleet: several app instances, each in its own OS process (__tests__/fixtures/app-instance.ts),
// driven together for the claims of fleet single flight: storms of concurrent calls in every
// process at once, their flight counters summed, and the moment one process holds a flight at the
// fake Entra ID while every other process waits for it.
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache } from '../../src';
import type { FakeEntraId, TokenRequestRecord } from '../../src/testing';
import { AppInstanceProcess } from './app-instance-process';
import type { AppInstanceOptions, ChildEvent } from './app-instance-process';
import { addRandomUser } from './entra';
import { redisUrl } from './stores';

const redirectUri = 'https://app.example.test/auth/callback';

/** One call's outcome, as the fixture's `all` op reports it. */
export interface Settled {
  status: 'fulfilled' | 'rejected';
  value?: { accessToken: string; homeAccountId?: string; fromCache?: boolean };
  reason?: { name?: string; className?: string; code?: string; errorCode?: string; subError?: string; errorNo?: string; message?: string };
}

/** The fixture's flight counters (see its `flightStats` op), summed over processes. */
export interface FlightStats {
  held: number;
  waitedOk: number;
  waitedFailed: number;
  takenOver: number;
  uncoordinated: number;
  lockErrorsIgnored: number;
  lockErrorsThrown: number;
}

export class Fleet {
  private constructor(readonly instances: AppInstanceProcess[]) {}

  /** `size` app instances in as many processes, sharing the fake Entra ID and the stores under `keyPrefix`. */
  static async start(
    entra: FakeEntraId,
    size: number,
    keyPrefix: string,
    env: NodeJS.ProcessEnv = {},
    options: AppInstanceOptions = {},
  ): Promise<Fleet> {
    const started = await Promise.allSettled(Array.from({ length: size }, () => AppInstanceProcess.start(entra, keyPrefix, env, options)));
    const instances = started.flatMap((each) => (each.status === 'fulfilled' ? [each.value] : []));
    if (instances.length < size) {
      await Promise.all(instances.map((instance) => instance.stop()));
      throw (started.find((each) => each.status === 'rejected') as PromiseRejectedResult).reason;
    }
    return new Fleet(instances);
  }

  /**
   * `callsEach` calls of `op` at once in every process (all processes at once), each with
   * `args(call)`: one promise per process of its outcomes, in call order.
   */
  stormEach(op: string, args: (call: number) => Record<string, unknown>, callsEach: number): Promise<Settled[]>[] {
    return this.instances.map(async (instance) => {
      const reply = await instance.call('all', { calls: Array.from({ length: callsEach }, (_, call) => ({ op, args: args(call) })) });
      if (!reply.ok) throw new Error(`process ${instance.pid} failed the storm: ${JSON.stringify(reply.error)}`);
      return reply.value as Settled[];
    });
  }

  /** As {@link stormEach}, every outcome once all are in. */
  async storm(op: string, args: (call: number) => Record<string, unknown>, callsEach: number): Promise<Settled[]> {
    return (await Promise.all(this.stormEach(op, args, callsEach))).flat();
  }

  /** The flight counters of `instances` since the last call, summed. */
  async flightStats(instances = this.instances): Promise<FlightStats> {
    const each = await Promise.all(
      instances.map(async (instance) => (await instance.call('flightStats', { reset: true })).value as FlightStats),
    );
    return each.reduce((sum, stats) => {
      for (const name of Object.keys(sum) as (keyof FlightStats)[]) sum[name] += stats[name];
      return sum;
    });
  }

  stop(): Promise<void[]> {
    return Promise.all(this.instances.map((instance) => instance.stop()));
  }
}

/** An app instance that reports its flight events and what its flight claims found (an {@link AppInstanceProcess}, or one in this process). */
export interface FlightReporter {
  onEvent(listener: (event: ChildEvent) => void): () => void;
}

/**
 * Watches one flight of `grantType` across `instances` (token answers should be held meanwhile):
 * `joined` resolves with the index of the process that holds it, once its request has reached the
 * fake and every other process has found the flight busy (all of them are in it at once); it
 * rejects as soon as a second process sends a request of its own.
 */
export function watchFlight(entra: FakeEntraId, instances: FlightReporter[], grantType: string): { joined: Promise<number>; stop(): void } {
  const busy = new Set<number>();
  const holders = new Set<number>();
  let arrived = false;
  let resolve!: (holder: number) => void;
  let reject!: (error: Error) => void;
  const joined = new Promise<number>((done, fail) => ((resolve = done), (reject = fail)));
  const check = (): void => {
    const [holder] = holders;
    if (holders.size > 1) reject(new Error(`instances ${[...holders].join(', ')} each sent a ${grantType} request of their own`));
    else if (arrived && holder !== undefined && instances.every((_, index) => index === holder || busy.has(index))) resolve(holder);
  };
  const unsubscribe = instances.map((instance, index) =>
    instance.onEvent((event) => {
      if (event.event === 'claim' && event.state === 'busy') busy.add(index);
      if (event.event === 'flight:held' || event.event === 'flight:taken-over' || event.event === 'flight:uncoordinated')
        holders.add(index);
      check();
    }),
  );
  const onRequest = (record: TokenRequestRecord): void => {
    if (record.grantType !== grantType) return;
    arrived = true;
    check();
  };
  entra.on('token-request', onRequest);
  return {
    joined,
    stop: () => {
      unsubscribe.forEach((stop) => stop());
      entra.off('token-request', onRequest);
    },
  };
}

/**
 * Runs `storm` with the fake's token answers held until every process is in one flight of
 * `grantType` (see {@link watchFlight}), then lets the holder's request be answered.
 */
export async function stormInOneFlight<T>(
  entra: FakeEntraId,
  instances: FlightReporter[],
  grantType: string,
  storm: () => Promise<T>,
): Promise<T> {
  const release = entra.holdTokenResponses();
  const watch = watchFlight(entra, instances, grantType);
  try {
    const running = storm();
    const ended = running.then(() => {
      throw new Error('the storm ended before every process was in the flight');
    });
    await Promise.race([watch.joined, ended]);
    release();
    return await running;
  } finally {
    watch.stop();
    release();
  }
}

/**
 * Runs `signIn` while the fake issues access tokens that expire within MSAL's 300 s renewal
 * offset: the next silent call for that sign-in refreshes. Tokens issued afterwards have the
 * fake's usual lifetime again (a refresh brings the account out of the window).
 */
export async function inRefreshWindow<T>(entra: FakeEntraId, signIn: () => Promise<T>): Promise<T> {
  const lifetime = entra.accessTokenLifetimeSeconds;
  entra.accessTokenLifetimeSeconds = 120;
  try {
    return await signIn();
  } finally {
    entra.accessTokenLifetimeSeconds = lifetime;
  }
}

/**
 * A new user signed in through `app` with `scopes`, whose access token is in MSAL's refresh window
 * (see {@link inRefreshWindow}).
 */
export async function signInInRefreshWindow(
  entra: FakeEntraId,
  app: DistributedClientApplication,
  scopes: string[],
): Promise<{ homeAccountId: string; accessToken: string }> {
  const user = addRandomUser(entra, 'Flight User');
  const result = await inRefreshWindow(entra, () =>
    app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes }),
  );
  return { homeAccountId: result.account!.homeAccountId, accessToken: result.accessToken };
}

/** Whether an outcome is the refusal of a refresh token (`invalid_grant`). */
export const isInvalidGrant = (settled: Settled): boolean => settled.reason?.errorCode === 'invalid_grant';

/** Every outcome has tokens, `count` of them, all with one access token (returned). */
export function expectOneToken(results: Settled[], count: number): string {
  expect(results.filter((result) => result.status !== 'fulfilled')).toEqual([]);
  expect(results).toHaveLength(count);
  const tokens = new Set(results.map((result) => result.value!.accessToken));
  expect(tokens.size).toBe(1);
  return [...tokens][0]!;
}

/** An app instance in the test's own process on the shared Redis under `keyPrefix` (to sign users in); close its cache after. */
export function localInstance(entra: FakeEntraId, keyPrefix: string): { app: DistributedClientApplication; cache: DistributedTokenCache } {
  const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(redisUrl()) }), keyPrefix });
  return { cache, app: new DistributedClientApplication(entra.msalConfig(), { cache }) };
}
