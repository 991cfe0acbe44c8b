// Benchmark 7: fleet single flight. 4 OS processes, each one app instance (a
// DistributedClientApplication with its own DistributedTokenCache on Redis through @keyv/redis and
// its own RedisLockStore on the same Redis), fire 25 identical calls each at the same wall-clock
// instant:
// - refresh storm: acquireTokenSilent for one user whose access token is in MSAL's refresh window
//   (it expires within 5 minutes), a fresh sign-in per storm;
// - app-token storm: acquireTokenByClientCredential for a resource nothing is cached for yet (a
//   new resource per storm).
// It counts the token requests per storm (goal: 1) and measures how much later than the holder
// (the caller that sent the request) the waiters got their answers.
import { randomUUID } from 'node:crypto';
import type { BenchContext } from './lib/context';
import { SCOPES, codeRequest, mintSignIn, workerEnv } from './lib/context';
import type { BenchmarkResult, Goal, Table } from './lib/report';
import { figure, ms, percentile, spread } from './lib/stats';
import type { Figure } from './lib/stats';
import { WorkerProcess } from './lib/worker-process';
import { profileStorm, segment } from './lib/flight-profile';
import type { FlightTimeline, HolderProfile, WaiterProfile } from './lib/flight-profile';

const PROCESSES = 4;
const CALLS_PER_PROCESS = 25;
const TOKEN_LATENCY_MS = 50;
/** `expires_in` of the sign-in's access token: below MSAL's 300 s renewal offset, so the first silent call refreshes. */
const SIGN_IN_LIFETIME_S = 200;
/** Lead time for the start barrier: every process starts its calls at the same wall-clock time. */
const START_LEAD_MS = 150;
const GOAL_P99_MS = 25;
/** Unmeasured storms at most, until every process has waited for another's flight once. */
const MAX_WARM_UP_STORMS = 10;

type Kind = 'refresh' | 'app';

interface CallReport {
  ok: boolean;
  startedAt: number;
  endedAt: number;
  fromCache?: boolean;
  /** A short SHA-256 of the access token the call got. */
  token?: string;
  /** Seconds until the token the call got expires. */
  expiresInS?: number | null;
  error?: string;
}

interface StormReply {
  calls: CallReport[];
  flights: FlightTimeline & {
    held: number;
    waited: number;
    takenOver: number;
    uncoordinated: number;
    waitedFailed: number;
    waitedMs: number[];
  };
}

interface StormRun {
  tokenCalls: number;
  answered: number;
  distinctTokens: number;
  /** Processes whose caller sent the request (flight:held or flight:taken-over). */
  holders: number;
  uncoordinated: number;
  waitedProcesses: number[];
  holderLatencyMs: number;
  /** Calls on the other instances (they waited on the lock store): end minus the holder's end. */
  waiterDeltas: number[];
  /** Every call but the holder's, its own process's joined calls included: end minus the holder's end. */
  otherDeltas: number[];
  startSkewMs: number;
  /** The least time left on a token a call got (a refreshed token must be out of the refresh window). */
  minExpiresInS: number;
  /** The sign-in's token: seconds left when the storm started (refresh storm only). */
  signInExpiresInS?: number;
  errors: string[];
  /** Where the waiting instances' time went (storms with exactly one holder). */
  profile: { holder: HolderProfile; waiters: WaiterProfile[] } | undefined;
}

interface KindSummary {
  kind: Kind;
  storms: number;
  tokenCalls: number[];
  answered: number[];
  distinctTokens: number[];
  holderLatency: Figure;
  startSkew: Figure;
  waiters: Latency;
  others: Latency;
  /** p99 of the waiters of each storm: median (min–max). */
  waiterP99PerStorm: Figure;
  minExpiresInS: number;
  signInExpiresInS?: number;
  errors: string[];
  first: StormRun;
  warmUpStorms: number;
  holders: HolderProfile[];
  waiterProfiles: WaiterProfile[];
  /** Per measured storm, for a look at the outliers. */
  perStorm: { holderLatencyMs: number; startSkewMs: number; waiterMaxMs: number; waiters?: WaiterProfile[] }[];
}

interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

const latency = (values: number[]): Latency => ({
  count: values.length,
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  max: values.length ? Math.max(...values) : NaN,
});

export async function fleetFlight(context: BenchContext): Promise<BenchmarkResult> {
  const { entra, quick } = context;
  const rounds = quick ? 8 : 25;
  const keyPrefix = `${context.keyPrefix}flight:`;
  const workers = await Promise.all(
    Array.from({ length: PROCESSES }, () => WorkerProcess.start('flight-worker.ts', workerEnv(context, keyPrefix))),
  );
  const previous = { latency: entra.tokenLatencyMs, lifetime: entra.accessTokenLifetimeSeconds };
  entra.tokenLatencyMs = TOKEN_LATENCY_MS;
  let stormCount = 0;

  const storm = async (kind: Kind): Promise<StormRun> => {
    const index = stormCount++;
    let args: Record<string, unknown>;
    let signInExpiresAt: number | undefined;
    if (kind === 'refresh') {
      // A new sign-in whose access token already expires within MSAL's 5-minute window; the refresh
      // then gets a token of the usual lifetime (as from Entra ID), which answers everyone else.
      entra.accessTokenLifetimeSeconds = SIGN_IN_LIFETIME_S;
      let signedIn: { homeAccountId: string; expiresOn: number | null };
      try {
        signedIn = await workers[index % PROCESSES]!.call('signIn', { request: codeRequest(mintSignIn(entra)) });
      } finally {
        entra.accessTokenLifetimeSeconds = previous.lifetime;
      }
      signInExpiresAt = signedIn.expiresOn ?? undefined;
      args = { homeAccountId: signedIn.homeAccountId, scopes: SCOPES };
    } else {
      args = { scopes: [`api://bench-flight-${randomUUID()}/.default`] }; // nothing cached for it yet
    }
    const grantType = kind === 'refresh' ? 'refresh_token' : 'client_credentials';
    const before = entra.tokenCallCount({ grantType });
    const startAt = Date.now() + START_LEAD_MS;
    const op = kind === 'refresh' ? 'silentStorm' : 'appStorm';
    const replies = await Promise.all(workers.map((worker) => worker.call<StormReply>(op, { ...args, count: CALLS_PER_PROCESS, startAt })));
    const tokenCalls = entra.tokenCallCount({ grantType }) - before;
    return summarizeStorm(replies, startAt, tokenCalls, signInExpiresAt);
  };

  const measure = async (kind: Kind): Promise<KindSummary> => {
    // The first storm of this kind in these processes, reported apart; then storms until every
    // process has waited once (its RedisLockStore subscribes to the lock channel on its first wait).
    const first = await storm(kind);
    const waitedOnce = new Set<number>();
    const note = (run: StormRun): void => run.waitedProcesses.forEach((waited, index) => waited > 0 && waitedOnce.add(index));
    note(first);
    let warmUpStorms = 1;
    for (; warmUpStorms < MAX_WARM_UP_STORMS && waitedOnce.size < PROCESSES; warmUpStorms++) note(await storm(kind));
    const runs: StormRun[] = [];
    for (let round = 0; round < rounds; round++) runs.push(await storm(kind));
    context.log(`flight: ${kind} storms done`);
    const signInLeft = runs.map((run) => run.signInExpiresInS).filter((value): value is number => value !== undefined);
    return {
      kind,
      storms: rounds,
      tokenCalls: runs.map((run) => run.tokenCalls),
      answered: runs.map((run) => run.answered),
      distinctTokens: runs.map((run) => run.distinctTokens),
      holderLatency: figure(runs.map((run) => run.holderLatencyMs)),
      startSkew: figure(runs.map((run) => run.startSkewMs)),
      waiters: latency(runs.flatMap((run) => run.waiterDeltas)),
      others: latency(runs.flatMap((run) => run.otherDeltas)),
      waiterP99PerStorm: figure(runs.map((run) => percentile(run.waiterDeltas, 99))),
      minExpiresInS: Math.min(...runs.map((run) => run.minExpiresInS)),
      ...(signInLeft.length && { signInExpiresInS: Math.max(...signInLeft) }),
      errors: [...new Set(runs.flatMap((run) => run.errors))],
      first,
      warmUpStorms,
      holders: runs.flatMap((run) => (run.profile ? [run.profile.holder] : [])),
      waiterProfiles: runs.flatMap((run) => run.profile?.waiters ?? []),
      perStorm: runs.map((run) => ({
        holderLatencyMs: run.holderLatencyMs,
        startSkewMs: run.startSkewMs,
        waiterMaxMs: Math.max(...run.waiterDeltas),
        ...(run.profile && { waiters: run.profile.waiters }),
      })),
    };
  };

  try {
    // What an app does at start-up before taking traffic: connect the stores, fetch the OpenID configuration.
    await Promise.all(workers.map((worker) => worker.call('warmUp')));
    const refresh = await measure('refresh');
    const app = await measure('app');
    const states = await Promise.all(workers.map((worker) => worker.call<{ waitingKeys: number }>('state')));
    return report([refresh, app], rounds, states);
  } finally {
    entra.tokenLatencyMs = previous.latency;
    entra.accessTokenLifetimeSeconds = previous.lifetime;
    await Promise.all(workers.map((worker) => worker.stop()));
  }
}

function summarizeStorm(replies: StormReply[], startAt: number, tokenCalls: number, signInExpiresAt: number | undefined): StormRun {
  const calls = replies.flatMap((reply) => reply.calls);
  const holding = replies
    .map((reply, index) => ({ index, reply }))
    .filter(({ reply }) => reply.flights.held + reply.flights.takenOver > 0)
    .map(({ index, reply }) => ({ index, end: Math.min(...reply.calls.map((call) => call.endedAt)) }))
    .sort((a, b) => a.end - b.end);
  const holder = holding[0];
  const holderCall = holder && replies[holder.index]!.calls.find((call) => call.endedAt === holder.end);
  const holderEnd = holder?.end ?? NaN;
  const answered = calls.filter((call) => call.ok);
  return {
    tokenCalls,
    answered: answered.length,
    distinctTokens: new Set(answered.map((call) => call.token)).size,
    holders: holding.length,
    uncoordinated: replies.reduce((sum, reply) => sum + reply.flights.uncoordinated, 0),
    waitedProcesses: replies.map((reply) => reply.flights.waited),
    holderLatencyMs: holderEnd - startAt,
    waiterDeltas: replies
      .filter((reply) => reply.flights.held + reply.flights.takenOver === 0)
      .flatMap((reply) => reply.calls.map((call) => call.endedAt - holderEnd)),
    otherDeltas: calls.filter((call) => call !== holderCall).map((call) => call.endedAt - holderEnd),
    startSkewMs: Math.max(...calls.map((call) => call.startedAt)) - Math.min(...calls.map((call) => call.startedAt)),
    minExpiresInS: Math.min(...answered.map((call) => call.expiresInS ?? Infinity)),
    ...(signInExpiresAt !== undefined && { signInExpiresInS: (signInExpiresAt - startAt) / 1000 }),
    errors: [...new Set(calls.filter((call) => !call.ok).map((call) => call.error ?? 'unknown'))],
    profile: profileStorm(
      replies.map((reply) => reply.flights),
      replies.map((reply) => reply.calls.map((call) => call.endedAt)),
    ),
  };
}

function report(kinds: KindSummary[], rounds: number, states: { waitingKeys: number }[]): BenchmarkResult {
  const total = PROCESSES * CALLS_PER_PROCESS;
  const label = (kind: Kind): string =>
    kind === 'refresh' ? 'refresh storm (acquireTokenSilent)' : 'app-token storm (client credentials)';
  const grant = (kind: Kind): string => (kind === 'refresh' ? 'refresh_token' : 'client_credentials');
  const counts = (values: number[]): string => {
    const tally = new Map<number, number>();
    for (const value of values) tally.set(value, (tally.get(value) ?? 0) + 1);
    return [...tally].map(([value, times]) => `${value} in ${times}`).join(', ');
  };
  const latencyRow = (name: string, value: Latency, perStorm?: Figure): string[] => [
    name,
    String(value.count),
    ms(value.p50),
    ms(value.p99),
    ms(value.max),
    perStorm ? spread(perStorm) : '',
  ];
  const goals: Goal[] = kinds.flatMap((summary) => [
    {
      benchmark: '7. fleet single flight',
      goal: `${summary.kind} storm: ${grant(summary.kind)} calls per storm = 1`,
      measured: `${counts(summary.tokenCalls)} of ${summary.storms} storms`,
      met: summary.tokenCalls.every((calls) => calls === 1),
    },
    {
      benchmark: '7. fleet single flight',
      goal: `${summary.kind} storm: ${total}/${total} answered, one token`,
      measured: `${Math.min(...summary.answered)} answered at least; ${Math.max(...summary.distinctTokens)} distinct tokens at most per storm`,
      met: summary.answered.every((answered) => answered === total) && summary.distinctTokens.every((tokens) => tokens === 1),
    },
    {
      benchmark: '7. fleet single flight',
      goal: `${summary.kind} storm: p99(waiter end - holder end) <= ${GOAL_P99_MS} ms`,
      measured: `${ms(summary.waiters.p99)} over ${summary.waiters.count} waiters (p50 ${ms(summary.waiters.p50)}, max ${ms(summary.waiters.max)})`,
      met: summary.waiters.p99 <= GOAL_P99_MS,
    },
  ]);
  const refresh = kinds.find((summary) => summary.kind === 'refresh');
  return {
    id: 'fleetSingleFlight',
    title: `7. Fleet single flight (${PROCESSES} OS processes x ${CALLS_PER_PROCESS} concurrent calls, token endpoint latency ${TOKEN_LATENCY_MS} ms)`,
    tables: [
      {
        headers: ['storm', 'storms', 'token calls per storm', 'answered', 'distinct tokens', 'holder latency', 'start skew'],
        rows: kinds.flatMap((summary) => [
          [
            label(summary.kind),
            String(summary.storms),
            counts(summary.tokenCalls),
            counts(summary.answered),
            counts(summary.distinctTokens),
            spread(summary.holderLatency),
            spread(summary.startSkew),
          ],
          [
            `  first storm (cold)`,
            '1',
            String(summary.first.tokenCalls),
            String(summary.first.answered),
            String(summary.first.distinctTokens),
            ms(summary.first.holderLatencyMs),
            ms(summary.first.startSkewMs),
          ],
        ]),
      },
      profileTable(kinds),
      {
        title: 'Added latency over the holder: a call end minus the holder call end (all calls start at the same instant)',
        headers: ['calls', 'samples', 'p50', 'p99', 'max', 'p99 per storm'],
        rows: kinds.flatMap((summary) => [
          latencyRow(`${summary.kind}: waiters on the other ${PROCESSES - 1} instances`, summary.waiters, summary.waiterP99PerStorm),
          latencyRow(`${summary.kind}: every call but the holder's`, summary.others),
          latencyRow(`${summary.kind}: first storm (cold), waiters`, latency(summary.first.waiterDeltas)),
        ]),
      },
    ],
    goals,
    notes: [
      `instance = a DistributedClientApplication with its own DistributedTokenCache on Redis (@keyv/redis, default options: the L1 on) and its own RedisLockStore, one per OS process (bench/workers/flight-worker.ts), ${PROCESSES} processes; each called app.warmUp() at start. Every storm: ${CALLS_PER_PROCESS} identical calls per process, all started at the same wall-clock instant (start skew = the spread of the actual starts).`,
      `holder = the caller that sent the token request (its process emitted flight:held); its call end is the earliest in that process. waiters = the calls on the other instances, which waited for the holder's flight on the lock store; "every call but the holder's" adds the ${CALLS_PER_PROCESS - 1} calls of the holder's process, which joined its call in-process. Added latency = a call's end minus the holder call's end, on the shared wall clock (performance.timeOrigin + performance.now()): as all start together, it is also the call's latency minus the holder's.`,
      `refresh storm: per storm a new user signs in through one of the processes (in turn) while the fake issues access tokens with expires_in ${SIGN_IN_LIFETIME_S} s (< MSAL's 300 s renewal offset${refresh?.signInExpiresInS !== undefined ? `; at most ${refresh.signInExpiresInS.toFixed(0)} s left when a storm started` : ''}), so the storm's silent calls need a refresh; the refresh gets the fake's usual lifetime (3600 s), as from Entra ID, so its token answers everyone else. With every token issued below 300 s, each refreshed token would be in the window at once and MSAL would refresh again for every caller (see docs/performance.md).`,
      `app-token storm: per storm a new resource (scopes [api://bench-flight-<uuid>/.default]), so nothing is cached for it.`,
      `${rounds} measured storms per kind, after the first storm (reported as cold) and further storms until every process had waited once (refresh: ${kinds[0]?.warmUpStorms}, app: ${kinds[1]?.warmUpStorms} unmeasured storms). Percentiles are over the waiters of all measured storms together; "p99 per storm" is the median (min–max) of each storm's p99. Token endpoint latency injected: ${TOKEN_LATENCY_MS} ms (entra.tokenLatencyMs).`,
      `least time left on a token a call got: ${kinds.map((summary) => `${summary.kind} ${summary.minExpiresInS.toFixed(0)} s`).join(', ')}; lock-store keys waited on after the storms: ${states.map((state) => state.waitingKeys).join(', ')}.`,
      ...kinds.filter((summary) => summary.errors.length).map((summary) => `${summary.kind} errors: ${summary.errors.join('; ')}`),
      ...kinds
        .filter((summary) => summary.first.errors.length)
        .map((summary) => `${summary.kind} first storm errors: ${summary.first.errors.join('; ')}`),
    ],
    data: {
      processes: PROCESSES,
      callsPerProcess: CALLS_PER_PROCESS,
      tokenLatencyMs: TOKEN_LATENCY_MS,
      signInLifetimeSeconds: SIGN_IN_LIFETIME_S,
      rounds,
      kinds: kinds.map(({ first, ...summary }) => ({
        ...summary,
        first: { ...first, waiterDeltas: latency(first.waiterDeltas), otherDeltas: undefined },
      })),
      workerStatesAfter: states,
    },
  };
}

/** Where a waiting instance's time went, per kind: p50 / p99 / max over the waiting instances of all measured storms. */
function profileTable(kinds: KindSummary[]): Table {
  const cells = (values: number[]): string[] => {
    const { p50, p99, max } = segment(values);
    return [ms(p50), ms(p99), ms(max)];
  };
  const tally = (values: string[]): string => {
    const counts = new Map<string, number>();
    for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
    return [...counts].map(([value, times]) => `${value} ${times}`).join(', ');
  };
  const rows: [string, (summary: KindSummary) => number[]][] = [
    ['holder: complete (record the outcome, publish)', (summary) => summary.holders.map((holder) => holder.completeMs)],
    ['holder: complete end -> holder call end', (summary) => summary.holders.map((holder) => holder.tailMs)],
    ['waiter: complete start -> its last busy claim end', (summary) => summary.waiterProfiles.map((waiter) => waiter.lastBusyMs)],
    ['waiter: complete start -> wake', (summary) => summary.waiterProfiles.map((waiter) => waiter.wakeMs)],
    ['waiter: wake -> claim start', (summary) => summary.waiterProfiles.map((waiter) => waiter.toClaimMs)],
    ['waiter: claim (finds the round done)', (summary) => summary.waiterProfiles.map((waiter) => waiter.claimMs)],
    ['waiter: re-read of the partition', (summary) => summary.waiterProfiles.map((waiter) => waiter.readMs)],
    ['waiter: cache-only MSAL answer', (summary) => summary.waiterProfiles.map((waiter) => waiter.answerMs)],
    ['waiter: flight:waited -> last joined call', (summary) => summary.waiterProfiles.map((waiter) => waiter.resolveMs)],
    ['waiter: last call end - holder call end', (summary) => summary.waiterProfiles.map((waiter) => waiter.addedMs)],
  ];
  return {
    title: `Where a waiting instance's time goes (per waiting process and storm; its ${CALLS_PER_PROCESS} calls are joined in-process)`,
    headers: ['segment', ...kinds.flatMap((summary) => [`${summary.kind} p50`, 'p99', 'max'])],
    rows: [
      ...rows.map(([name, values]) => [name, ...kinds.flatMap((summary) => cells(values(summary)))]),
      ['waiter: woken by', ...kinds.flatMap((summary) => [tally(summary.waiterProfiles.map((waiter) => waiter.wake)), '', ''])],
      [
        'waiter: claims per flight (p50, max)',
        ...kinds.flatMap((summary) => {
          const { p50, max } = segment(summary.waiterProfiles.map((waiter) => waiter.claims));
          return [`${p50}, ${max}`, '', ''];
        }),
      ],
      [
        'waiter: polls that timed out',
        ...kinds.flatMap((summary) => [String(summary.waiterProfiles.reduce((sum, waiter) => sum + waiter.polls, 0)), '', '']),
      ],
      [
        'waiter: re-read answered from',
        ...kinds.flatMap((summary) => [tally(summary.waiterProfiles.map((waiter) => waiter.readLevel)), '', '']),
      ],
    ],
  };
}
