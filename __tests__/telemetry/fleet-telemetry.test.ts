// Telemetry across OS processes, with the real OpenTelemetry SDK: 4 app instances (each in its own
// process, __tests__/fixtures/app-instance.ts with OTEL_IN_MEMORY=1) pass a MeterProvider with an
// in-memory reader and a BasicTracerProvider with an in-memory span exporter through the cache's
// `telemetry` option. Storms of 4 x 25 concurrent calls are held at the fake Entra ID until every
// process is in them, so that what happened is known exactly: the figures each process exported,
// summed over the fleet, must tell the same story as the fake's token endpoint and the library's
// events (one refresh, one redemption, one refused refresh token); the spans must nest under the
// caller's span; and nothing any process exported (every attribute, event, link, status and
// resource attribute) may hold a token, code, secret, verifier or raw account id issued or used in
// these tests.
import { randomUUID } from 'node:crypto';
import { createClient } from '@keyv/redis';
import type { Attributes } from '@opentelemetry/api';
import type { FakeEntraId, FakeUser } from '../../src/testing';
import type { Exported, ExportedMetric, ExportedSpan } from '../fixtures/in-memory-telemetry';
import type { AppInstanceProcess, ChildEvent } from '../helpers/app-instance-process';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import { expectOneToken, Fleet, inRefreshWindow, isInvalidGrant, stormInOneFlight } from '../helpers/fleet';
import type { Settled } from '../helpers/fleet';
import { redisUrl } from '../helpers/stores';
import { version } from '../../package.json';

const PROCESSES = 4;
const CALLS_EACH = 25;
const CALLS = PROCESSES * CALLS_EACH;
const scopes = ['User.Read'];
const redirectUri = 'https://app.example.test/auth/callback';
const SCOPE = 'msal-distributed-cache';
/** The even calls of a storm run in a span of the app's own (the caller's context); the odd ones in none. */
const callerOf = (call: number): { caller?: string } => (call % 2 === 0 ? { caller: `caller ${call}` } : {});
const TRACED_EACH = Math.ceil(CALLS_EACH / 2);

/** Sum of a metric's points whose attributes include `match`: values of sums, counts of histograms. */
function total(exported: Exported, name: string, match: Attributes = {}): number {
  return metricsNamed(exported, name)
    .flatMap((metric) => metric.points)
    .filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value))
    .reduce((sum, point) => sum + (point.count ?? point.value ?? 0), 0);
}
const metricsNamed = (exported: Exported, name: string): ExportedMetric[] => exported.metrics.filter((metric) => metric.name === name);
const fleetTotal = (each: Exported[], name: string, match: Attributes = {}): number =>
  each.reduce((sum, exported) => sum + total(exported, name, match), 0);
const spansNamed = (exported: Exported, name: string): ExportedSpan[] => exported.spans.filter((span) => span.name === name);

/** The library's spans of `exported` (not the callers' own): each is an operation's, or lies under one. */
function expectNested(exported: Exported, operation: string): void {
  const byId = new Map(exported.spans.map((span) => [span.spanId, span]));
  const ours = exported.spans.filter((span) => span.scope.name === SCOPE);
  for (const span of ours) {
    if (span.name === `msal_dc ${operation}`) continue;
    let ancestor: ExportedSpan | undefined = span;
    while (ancestor && ancestor.name !== `msal_dc ${operation}`)
      ancestor = ancestor.parentSpanId ? byId.get(ancestor.parentSpanId) : undefined;
    expect({ span: span.name, under: ancestor?.name, sameTrace: ancestor?.traceId === span.traceId }).toEqual({
      span: span.name,
      under: `msal_dc ${operation}`,
      sameTrace: true,
    });
  }
}

/**
 * Each `msal_dc <operation>` span of `exported` is a root (a call without a caller span) or the only
 * child of its caller's span, in its trace: `traced` of them children, the rest roots.
 */
function expectOperationsUnderCallers(exported: Exported, operation: string, count: number, traced: number): ExportedSpan[] {
  const operations = spansNamed(exported, `msal_dc ${operation}`);
  expect(operations).toHaveLength(count);
  expect(operations.every((span) => span.scope.name === SCOPE && span.kind === 'INTERNAL')).toBe(true);
  const callers = exported.spans.filter((span) => span.scope.name === 'app-instance-fixture');
  expect(callers).toHaveLength(traced);
  for (const caller of callers) {
    const children = operations.filter((span) => span.parentSpanId === caller.spanId);
    expect(children.map((child) => ({ name: child.name, traceId: child.traceId }))).toEqual([
      { name: `msal_dc ${operation}`, traceId: caller.traceId },
    ]);
  }
  expect(operations.filter((span) => span.parentSpanId === undefined)).toHaveLength(count - traced);
  return operations;
}

describe(`telemetry of ${PROCESSES} processes (the real OpenTelemetry SDK, in-memory reader and exporter) in storms of ${PROCESSES} x ${CALLS_EACH} calls`, () => {
  let entra: FakeEntraId;
  let fleet: Fleet;
  let keyPrefix: string;
  let raw: ReturnType<typeof createClient>;
  /** Everything any process exported in this file, as JSON text. */
  const everything: string[] = [];
  /** Every secret issued or used in this file, with what it is. */
  const secrets = new Map<string, string>();

  /** What each process exported since the last collection (kept for the final scan). */
  async function collect(): Promise<Exported[]> {
    const each = await Promise.all(
      fleet.instances.map(async (instance) => {
        const reply = await instance.call('telemetry', {});
        if (!reply.ok) throw new Error(`process ${instance.pid} could not collect: ${JSON.stringify(reply.error)}`);
        return reply.value as Exported;
      }),
    );
    everything.push(...each.map((exported) => JSON.stringify(exported)));
    return each;
  }

  /** Records a secret: the whole value and its distinctive parts (a JWT's payload and signature, a random tail). */
  function secret(kind: string, value: string | undefined): void {
    if (!value) return;
    secrets.set(value, kind);
    const jwt = value.split('.');
    if (jwt.length === 3 && value.startsWith('eyJ')) {
      secrets.set(jwt[1]!, `${kind} (payload)`);
      secrets.set(jwt[2]!, `${kind} (signature)`);
    }
    const tail = /^fake-(?:rt|code)\.(.+)$/.exec(value)?.[1];
    if (tail) secrets.set(tail, `${kind} (random part)`);
  }

  /** A user's identifiers: the raw homeAccountId, its object id, the sign-in name. */
  function account(user: FakeUser): string {
    const homeAccountId = entra.homeAccountIdOf(user);
    secret('homeAccountId', homeAccountId);
    secret('object id', user.oid);
    secret('username', user.username);
    return homeAccountId;
  }

  /** Every token MSAL's cache holds now under our prefix (each "secret" field: access, refresh and id tokens). */
  async function collectStoredTokens(): Promise<number> {
    let found = 0;
    for await (const batch of raw.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 500 })) {
      for (const key of ([] as string[]).concat(batch)) {
        const type = await raw.type(key);
        const value = type === 'string' ? ((await raw.get(key)) ?? '') : type === 'hash' ? JSON.stringify(await raw.hGetAll(key)) : '';
        for (const match of value.matchAll(/secret\\*"\s*:\s*\\*"([^"\\]+)/g)) {
          secret('token from the cache', match[1]);
          found++;
        }
      }
    }
    return found;
  }

  function results(settled: Settled[]): void {
    for (const result of settled) secret('access token (result)', result.value?.accessToken);
  }

  /** No secret, and nothing shaped like a token or code of the fake, in `texts`. */
  function expectNoSecret(texts: string[]): void {
    const text = texts.join('\n');
    expect(text.length).toBeGreaterThan(0);
    const found = [...secrets].filter(([value]) => text.includes(value)).map(([, kind]) => kind);
    expect(found).toEqual([]);
    expect(text.match(/eyJ[A-Za-z0-9_-]{8,}|fake-rt\.|fake-code\.|fake-client-secret/g)).toBeNull();
  }

  beforeAll(async () => {
    entra = await startFakeEntraId({ strictRefreshTokenRotation: true });
    keyPrefix = `fleet-telemetry-${randomUUID()}:`;
    secret('client secret', entra.msalConfig().auth.clientSecret);
    raw = createClient({ url: redisUrl() });
    await raw.connect();
    fleet = await Fleet.start(entra, PROCESSES, keyPrefix, { OTEL_IN_MEMORY: '1' });
  });
  afterAll(async () => {
    await fleet?.stop();
    raw?.destroy();
    await entra?.close();
  });
  beforeEach(async () => {
    await collect(); // the figures of each test from here on
    await fleet.flightStats();
  });

  it(`refresh storm: ${CALLS} acquireTokenSilent for a user in MSAL's refresh window, 1 refresh at the fake; the fleet's figures say so: 1 refresh_token request, 1 flight held and 1 waited in each other process, ${CALLS} successful operations; spans under their callers, the holder's with the token request`, async () => {
    // Signed in through a process of the fleet (its telemetry scanned too) with an access token in the refresh window.
    const { user, code, verifier } = await newPkceSignIn(entra, redirectUri, 'Telemetry User');
    const homeAccountId = account(user);
    secret('code', code);
    secret('PKCE verifier', verifier);
    const signIn = await inRefreshWindow(entra, () =>
      fleet.instances[0]!.call('signIn', { code, redirectUri, scopes, codeVerifier: verifier }),
    );
    expect(signIn.value).toMatchObject({ homeAccountId });
    secret('access token (sign-in)', (signIn.value as { accessToken: string }).accessToken);
    expect(await collectStoredTokens()).toBeGreaterThanOrEqual(3); // access, refresh and id token
    await collect(); // the sign-in's figures are not the storm's

    const before = entra.tokenCallCount({ grantType: 'refresh_token' });
    const settled = await stormInOneFlight(entra, fleet.instances, 'refresh_token', () =>
      fleet.storm('silent', (call) => ({ homeAccountId, scopes, correlationId: randomUUID(), ...callerOf(call) }), CALLS_EACH),
    );
    results(settled);
    await collectStoredTokens(); // the rotated refresh token, the new access token
    expect(settled.filter(isInvalidGrant)).toEqual([]);
    expectOneToken(settled, CALLS);
    expect(entra.tokenCallCount({ grantType: 'refresh_token' }) - before).toBe(1);
    const each = await collect();

    // Who held the flight, by the library's events; the figures must agree, process by process.
    const flights = await Promise.all(fleet.instances.map(async (instance) => (await instance.call('flightStats', { reset: true })).value));
    const holder = flights.findIndex((stats) => (stats as { held: number }).held === 1);
    expect(holder).toBeGreaterThanOrEqual(0);
    each.forEach((exported, index) => {
      const grant = { 'msal_dc.grant_type': 'refresh_token' };
      expect({
        process: index,
        refreshRequests: total(exported, 'msal_dc.token_requests', grant),
        successfulRefreshRequests: total(exported, 'msal_dc.token_requests', {
          ...grant,
          'msal_dc.result': 'success',
          'http.response.status_code': 200,
        }),
        requestDurations: total(exported, 'msal_dc.token_request.duration', grant),
        held: total(exported, 'msal_dc.flights', { ...grant, 'msal_dc.flight.role': 'held' }),
        waitedOk: total(exported, 'msal_dc.flights', { ...grant, 'msal_dc.flight.role': 'waited', 'msal_dc.flight.outcome': 'ok' }),
        waitDurations: total(exported, 'msal_dc.flight.wait.duration', { ...grant, 'msal_dc.flight.outcome': 'ok' }),
        flights: total(exported, 'msal_dc.flights'),
        silentSuccesses: total(exported, 'msal_dc.operation.duration', {
          'msal_dc.operation': 'acquire_token_silent',
          'msal_dc.outcome': 'success',
        }),
        operations: total(exported, 'msal_dc.operation.duration'),
        tokenRequests: total(exported, 'msal_dc.token_requests'),
      }).toEqual({
        process: index,
        refreshRequests: index === holder ? 1 : 0,
        successfulRefreshRequests: index === holder ? 1 : 0,
        requestDurations: index === holder ? 1 : 0,
        held: index === holder ? 1 : 0,
        waitedOk: index === holder ? 0 : 1,
        waitDurations: index === holder ? 0 : 1,
        flights: 1,
        silentSuccesses: CALLS_EACH,
        operations: CALLS_EACH,
        tokenRequests: index === holder ? 1 : 0,
      });
    });
    // Summed over the fleet: what the fake saw, and what the library's events said.
    expect({
      refreshRequests: fleetTotal(each, 'msal_dc.token_requests', { 'msal_dc.grant_type': 'refresh_token' }),
      held: fleetTotal(each, 'msal_dc.flights', { 'msal_dc.flight.role': 'held' }),
      waitedOk: fleetTotal(each, 'msal_dc.flights', { 'msal_dc.flight.role': 'waited', 'msal_dc.flight.outcome': 'ok' }),
      silentSuccesses: fleetTotal(each, 'msal_dc.operation.duration', {
        'msal_dc.operation': 'acquire_token_silent',
        'msal_dc.outcome': 'success',
      }),
    }).toEqual({ refreshRequests: 1, held: 1, waitedOk: PROCESSES - 1, silentSuccesses: CALLS });
    // The library's flight events, process by process: the same as the figures.
    expect(flights).toEqual(
      fleet.instances.map((_, index) =>
        expect.objectContaining({ held: index === holder ? 1 : 0, waitedOk: index === holder ? 0 : 1, takenOver: 0, uncoordinated: 0 }),
      ),
    );
    for (const exported of each)
      for (const metric of exported.metrics.filter((metric) => metric.name.startsWith('msal_dc.')))
        expect({ name: metric.name, scope: metric.scope }).toEqual({ name: metric.name, scope: { name: SCOPE, version } });

    // Spans: each operation under its caller's span (or a root), every other span of ours under an
    // operation; the one token request a child of one of the holder's operations.
    const operationsOf = each.map((exported) => expectOperationsUnderCallers(exported, 'acquire_token_silent', CALLS_EACH, TRACED_EACH));
    each.forEach((exported) => expectNested(exported, 'acquire_token_silent'));
    const requests = each.map((exported) => spansNamed(exported, 'msal_dc token_request'));
    expect(requests.map((spans) => spans.length)).toEqual(fleet.instances.map((_, index) => (index === holder ? 1 : 0)));
    const request = requests[holder]![0]!;
    expect(request).toMatchObject({
      kind: 'CLIENT',
      attributes: { 'msal_dc.grant_type': 'refresh_token', 'msal_dc.result': 'success', 'http.response.status_code': 200 },
    });
    const parent = operationsOf[holder]!.find((span) => span.spanId === request.parentSpanId);
    expect(parent).toMatchObject({ name: 'msal_dc acquire_token_silent', traceId: request.traceId });
    for (const operation of operationsOf.flat()) expect(operation.status.code).not.toBe('ERROR');
    // The one waiter of each other process (the caller that waited on the lock store; the rest of its
    // process joined it) links its operation to the holder's token request, through the flight's outcome.
    expect(
      operationsOf.map((operations) => operations.flatMap((span) => span.links.map(({ traceId, spanId }) => ({ traceId, spanId })))),
    ).toEqual(fleet.instances.map((_, index) => (index === holder ? [] : [{ traceId: request.traceId, spanId: request.spanId }])));

    expectNoSecret(each.map((exported) => JSON.stringify(exported)));
  });

  it(`redemption storm: one code, ${CALLS_EACH} duplicates in each of ${PROCESSES} processes, 1 authorization_code call at the fake; the fleet's figures say so: 1 redeemed, ${CALLS - PROCESSES} joined, 1 waited and answered in each other process; a late wrong-verifier duplicate refused; spans under their callers, the redeemer's with the token request`, async () => {
    const { user, code, verifier } = await newPkceSignIn(entra, redirectUri, 'Redeeming User');
    const homeAccountId = account(user);
    secret('code', code);
    secret('PKCE verifier', verifier);
    const request = { code, redirectUri, scopes, codeVerifier: verifier };

    const events = fleet.instances.map(() => [] as ChildEvent[]);
    const settled = await stormInOneRedemption(entra, fleet.instances, events, () =>
      fleet.storm('signIn', (call) => ({ ...request, ...callerOf(call) }), CALLS_EACH),
    );
    results(settled);
    await collectStoredTokens();
    expect(settled.filter((result) => result.status !== 'fulfilled')).toEqual([]);
    expect(new Set(settled.map((result) => result.value!.homeAccountId))).toEqual(new Set([homeAccountId]));
    expect(entra.tokenCallCount({ code })).toBe(1);
    const each = await collect();

    const count = (index: number, name: ChildEvent['event']): number => events[index]!.filter((event) => event.event === name).length;
    const redeemer = events.findIndex((_, index) => count(index, 'redeem:redeemed') === 1);
    expect(redeemer).toBeGreaterThanOrEqual(0);
    const outcome = (exported: Exported, value: string): number =>
      total(exported, 'msal_dc.redemptions', { 'msal_dc.redemption.outcome': value });
    each.forEach((exported, index) => {
      const figures = {
        redeemed: outcome(exported, 'redeemed'),
        joined: outcome(exported, 'joined'),
        waited: outcome(exported, 'waited'),
        answered: outcome(exported, 'answered'),
        all: total(exported, 'msal_dc.redemptions'),
        codeRequests: total(exported, 'msal_dc.token_requests', {
          'msal_dc.grant_type': 'authorization_code',
          'msal_dc.result': 'success',
          'http.response.status_code': 200,
        }),
        tokenRequests: total(exported, 'msal_dc.token_requests'),
        byCodeSuccesses: total(exported, 'msal_dc.operation.duration', {
          'msal_dc.operation': 'acquire_token_by_code',
          'msal_dc.outcome': 'success',
        }),
        operations: total(exported, 'msal_dc.operation.duration'),
      };
      // The library's events of this process say the same.
      expect(figures).toEqual({
        redeemed: count(index, 'redeem:redeemed'),
        joined: count(index, 'redeem:joined'),
        waited: count(index, 'redeem:waited'),
        answered: count(index, 'redeem:answered-from-cache'),
        all: events[index]!.filter((event) => event.event.startsWith('redeem:')).length,
        codeRequests: index === redeemer ? 1 : 0,
        tokenRequests: index === redeemer ? 1 : 0,
        byCodeSuccesses: CALLS_EACH,
        operations: CALLS_EACH,
      });
      // And what happened is known: the storm was held until every process was in it.
      expect(figures).toMatchObject(
        index === redeemer
          ? { redeemed: 1, joined: CALLS_EACH - 1, waited: 0, answered: 0 }
          : { redeemed: 0, joined: CALLS_EACH - 1, waited: 1, answered: 1 },
      );
    });
    expect({
      redeemed: fleetTotal(each, 'msal_dc.redemptions', { 'msal_dc.redemption.outcome': 'redeemed' }),
      codeRequests: fleetTotal(each, 'msal_dc.token_requests', { 'msal_dc.grant_type': 'authorization_code' }),
      refused: fleetTotal(each, 'msal_dc.redemptions', { 'msal_dc.redemption.outcome': 'refused' }),
    }).toEqual({ redeemed: entra.tokenCallCount({ code }), codeRequests: 1, refused: 0 });
    // The waits on the lock store: in each process that waited, none in the redeemer's.
    each.forEach((exported, index) => {
      const waits = total(exported, 'msal_dc.lock.wait.duration', { 'msal_dc.lock.purpose': 'redemption' });
      if (index === redeemer) expect(waits).toBe(0);
      else expect(waits).toBeGreaterThanOrEqual(1);
    });

    // Spans: operations under their callers; the redeemer's token request under one of its operations.
    const operationsOf = each.map((exported) => expectOperationsUnderCallers(exported, 'acquire_token_by_code', CALLS_EACH, TRACED_EACH));
    each.forEach((exported) => expectNested(exported, 'acquire_token_by_code'));
    const requests = each.map((exported) => spansNamed(exported, 'msal_dc token_request'));
    expect(requests.map((spans) => spans.length)).toEqual(fleet.instances.map((_, index) => (index === redeemer ? 1 : 0)));
    const tokenRequest = requests[redeemer]![0]!;
    expect(tokenRequest).toMatchObject({
      kind: 'CLIENT',
      attributes: { 'msal_dc.grant_type': 'authorization_code', 'msal_dc.result': 'success' },
    });
    expect(operationsOf[redeemer]!.some((span) => span.spanId === tokenRequest.parentSpanId)).toBe(true);
    // Every process claimed the code once; the others waited for it.
    each.forEach((exported, index) => {
      const lockSpans = (name: string): number =>
        spansNamed(exported, name).filter((span) => span.attributes['msal_dc.lock.purpose'] === 'redemption').length;
      expect({ claims: lockSpans('msal_dc lock.claim') >= 1, waits: lockSpans('msal_dc lock.wait') >= 1 }).toEqual({
        claims: true,
        waits: index !== redeemer,
      });
    });

    // A late duplicate with the wrong verifier is refused, and says so; the right one is answered.
    const wrongVerifier = (await newPkceSignIn(entra, redirectUri)).verifier;
    secret('wrong PKCE verifier', wrongVerifier);
    const late = (redeemer + 1) % PROCESSES;
    const refused = await fleet.instances[late]!.call('signIn', { ...request, codeVerifier: wrongVerifier, caller: 'late wrong' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'ERR_CODE_ALREADY_REDEEMED' } });
    const answered = await fleet.instances[late]!.call('signIn', { ...request, caller: 'late right' });
    expect(answered.value).toMatchObject({ homeAccountId });
    secret('access token (late duplicate)', (answered.value as { accessToken: string }).accessToken);
    expect(entra.tokenCallCount({ code })).toBe(1);
    const afterwards = (await collect())[late]!;
    expect({
      refused: total(afterwards, 'msal_dc.redemptions', {
        'msal_dc.redemption.outcome': 'refused',
        'msal_dc.refusal.reason': 'binding-mismatch',
      }),
      answered: total(afterwards, 'msal_dc.redemptions', { 'msal_dc.redemption.outcome': 'answered' }),
      failures: total(afterwards, 'msal_dc.operation.duration', {
        'msal_dc.operation': 'acquire_token_by_code',
        'msal_dc.outcome': 'failure',
        'error.type': 'ERR_CODE_ALREADY_REDEEMED',
      }),
      successes: total(afterwards, 'msal_dc.operation.duration', {
        'msal_dc.operation': 'acquire_token_by_code',
        'msal_dc.outcome': 'success',
      }),
      tokenRequests: total(afterwards, 'msal_dc.token_requests'),
    }).toEqual({ refused: 1, answered: 1, failures: 1, successes: 1, tokenRequests: 0 });
    const [failed] = spansNamed(afterwards, 'msal_dc acquire_token_by_code').filter((span) => span.status.code === 'ERROR');
    expect(failed).toMatchObject({ attributes: { 'error.type': 'ERR_CODE_ALREADY_REDEEMED' } });
    expect(spansNamed(afterwards, 'msal_dc acquire_token_by_code').every((span) => span.parentSpanId !== undefined)).toBe(true);

    expectNoSecret([...each, afterwards].map((exported) => JSON.stringify(exported)));
  });

  it('a refresh token presented again after its rotation (strict rotation) is refused with invalid_grant AADSTS70043: the failed request and operation say so, by code family, and carry nothing of the request', async () => {
    const { user, code, verifier } = await newPkceSignIn(entra, redirectUri, 'Rotated User');
    const homeAccountId = account(user);
    secret('code', code);
    secret('PKCE verifier', verifier);
    const refreshTokensNow = (): string[] => [...secrets.keys()].filter((value) => value.startsWith('fake-rt.'));
    const known = new Set(refreshTokensNow());
    await fleet.instances[1]!.call('signIn', { code, redirectUri, scopes, codeVerifier: verifier });
    await collectStoredTokens();
    const [first] = refreshTokensNow().filter((value) => !known.has(value)); // the sign-in's refresh token
    expect(first).toBeDefined();
    const rotated = await fleet.instances[1]!.call('silent', { homeAccountId, scopes, forceRefresh: true });
    expect(rotated.value).toMatchObject({ fromCache: false, homeAccountId });
    secret('access token (rotation)', (rotated.value as { accessToken: string }).accessToken);
    await collectStoredTokens();
    await collect();

    const reused = await fleet.instances[2]!.call('byRefreshToken', { refreshToken: first, scopes, caller: 'legacy refresh' });
    expect(reused).toMatchObject({ ok: false, error: { errorCode: 'invalid_grant' } });
    expect(String((reused.error as { errorNo?: string }).errorNo)).toBe('70043');
    const exported = (await collect())[2]!;
    const refused = {
      'msal_dc.grant_type': 'refresh_token',
      'msal_dc.result': 'error',
      'http.response.status_code': 400,
      'error.type': 'invalid_grant',
      'msal_dc.aadsts.family': 'AADSTS70xxx',
      'msal_dc.aadsts.code': 70043,
    };
    expect({
      refused: total(exported, 'msal_dc.token_requests', refused),
      requests: total(exported, 'msal_dc.token_requests'),
      failures: total(exported, 'msal_dc.operation.duration', {
        'msal_dc.operation': 'acquire_token_by_refresh_token',
        'msal_dc.outcome': 'failure',
        'error.type': 'invalid_grant',
      }),
      operations: total(exported, 'msal_dc.operation.duration'),
    }).toEqual({ refused: 1, requests: 1, failures: 1, operations: 1 });
    const [operation] = expectOperationsUnderCallers(exported, 'acquire_token_by_refresh_token', 1, 1);
    expect(operation).toMatchObject({ status: { code: 'ERROR' }, attributes: { 'error.type': 'invalid_grant' } });
    expect(operation!.events.map((event) => event.name)).toContain('exception');
    const [request] = spansNamed(exported, 'msal_dc token_request');
    expect(request).toMatchObject({ kind: 'CLIENT', parentSpanId: operation!.spanId, status: { code: 'ERROR' }, attributes: refused });
    expectNested(exported, 'acquire_token_by_refresh_token');

    expectNoSecret([JSON.stringify(exported)]);
  });

  it('nothing any process exported in this file (every metric point, span, attribute, event, link, status and resource attribute) holds a token, code, secret, verifier or raw account id', async () => {
    await collect(); // what was recorded after the last collection
    expect(await collectStoredTokens()).toBeGreaterThan(0);
    const kinds = new Set(secrets.values());
    // What was collected to look for: all of it, from the results and the shared cache.
    for (const kind of [
      'client secret',
      'code',
      'PKCE verifier',
      'wrong PKCE verifier',
      'homeAccountId',
      'object id',
      'token from the cache',
    ])
      expect(kinds).toContain(kind);
    const refreshTokens = [...secrets.keys()].filter((value) => value.startsWith('fake-rt.'));
    expect(refreshTokens.length).toBeGreaterThanOrEqual(3); // the first sign-in's, its rotation's, the redemption's
    expect([...secrets.keys()].filter((value) => value.startsWith('eyJ')).length).toBeGreaterThanOrEqual(5);
    expect(everything.join('').includes('msal_dc acquire_token_silent')).toBe(true);
    expectNoSecret(everything);
  });
});

/**
 * Runs `storm` (duplicates of one code in every process) with the fake's token answers held until
 * the code's request has arrived, every other process has found the code busy, and every process's
 * other calls have joined its own redemption: then what each process does is known. `events`
 * receives what each process reported meanwhile.
 */
async function stormInOneRedemption<T>(
  entra: FakeEntraId,
  instances: AppInstanceProcess[],
  events: ChildEvent[][],
  storm: () => Promise<T>,
): Promise<T> {
  const release = entra.holdTokenResponses();
  let arrived = false;
  let resolve!: () => void;
  const allIn = new Promise<void>((done) => (resolve = done));
  const check = (): void => {
    const joined = (index: number): number => events[index]!.filter((event) => event.event === 'redeem:joined').length;
    const claimed = (index: number, state: string): boolean =>
      events[index]!.some((event) => event.event === 'redeem-claim' && event.state === state);
    const redeemers = instances.filter((_, index) => claimed(index, 'claimed')).length;
    const inIt = instances.every((_, index) => joined(index) === CALLS_EACH - 1 && (claimed(index, 'claimed') || claimed(index, 'busy')));
    if (arrived && redeemers === 1 && inIt) resolve();
  };
  const unsubscribe = instances.map((instance, index) =>
    instance.onEvent((event) => {
      events[index]!.push(event);
      check();
    }),
  );
  const onRequest = (record: { grantType: string }): void => {
    if (record.grantType !== 'authorization_code') return;
    arrived = true;
    check();
  };
  entra.on('token-request', onRequest);
  try {
    const running = storm();
    const ended = running.then(() => {
      throw new Error('the storm ended before every process was in the redemption');
    });
    await Promise.race([allIn, ended]);
    release();
    const result = await running;
    return result;
  } finally {
    release();
    unsubscribe.forEach((stop) => stop());
    entra.off('token-request', onRequest);
  }
}
