// Spans with the real OpenTelemetry SDK (in-memory exporter, AsyncLocalStorage context manager):
// one per public operation, a child of the caller's active span, with the cache reads and writes,
// the lock-store calls and the token request as its children.
import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { CryptoProvider } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache } from '../../src';
import { useFakeEntraId } from '../helpers/entra';
import { rejectionOf } from '../helpers/assertions';
import { OtelHarness } from '../helpers/otel';
import { flightPair } from '../helpers/flight-pair';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

const { entra, cleanups } = useFakeEntraId();
let otel: OtelHarness;

beforeEach(() => {
  otel = new OtelHarness();
  cleanups.push(() => otel.close());
});

function app(): DistributedClientApplication {
  const cache = new DistributedTokenCache({ telemetry: otel.telemetry });
  const msal = new DistributedClientApplication(entra().msalConfig(), { cache });
  cleanups.push(
    () => msal.close(),
    () => cache.close(),
  );
  return msal;
}

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan): string => span.spanContext().spanId;

/** The spans under `root`, as a tree of names (children sorted by start). */
function tree(spans: ReadableSpan[], root: ReadableSpan): unknown {
  const children = spans.filter((span) => parentOf(span) === idOf(root));
  return children.length === 0 ? root.name : { [root.name]: children.map((child) => tree(spans, child)) };
}

describe('spans', () => {
  it("nest under the caller's active span: caller → msal_dc acquire_token_silent → cache.read, lock.claim and token_request", async () => {
    const msal = app();
    const signIn = await msal.acquireTokenByCode({ code: entra().mintCode({ redirectUri }), redirectUri, scopes });
    otel.exporter.reset();
    const tracer = otel.tracerProvider.getTracer('the-app');
    await tracer.startActiveSpan('GET /profile', async (caller) => {
      await msal.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes, forceRefresh: true });
      caller.end();
    });
    const spans = otel.spans();
    const caller = spans.find((span) => span.name === 'GET /profile')!;
    const operation = spans.find((span) => span.name === 'msal_dc acquire_token_silent')!;
    expect(parentOf(operation)).toBe(idOf(caller));
    expect(operation.spanContext().traceId).toBe(caller.spanContext().traceId);
    expect(operation.kind).toBe(SpanKind.INTERNAL);
    expect(operation.attributes).toEqual({ 'msal_dc.token_source': 'identity_provider' });
    expect(tree(spans, operation)).toEqual({
      'msal_dc acquire_token_silent': [
        'msal_dc cache.read',
        'msal_dc lock.claim',
        'msal_dc token_request',
        'msal_dc cache.write',
        'msal_dc lock.complete',
      ],
    });
    const request = spans.find((span) => span.name === 'msal_dc token_request')!;
    expect(request.kind).toBe(SpanKind.CLIENT);
    expect(request.attributes).toEqual({
      'msal_dc.grant_type': 'refresh_token',
      'server.address': '127.0.0.1',
      'msal_dc.result': 'success',
      'http.response.status_code': 200,
    });
    const read = spans.find((span) => span.name === 'msal_dc cache.read')!;
    expect(read.attributes).toEqual({ 'msal_dc.partition.hash': expect.stringMatching(/^[0-9a-f]{32}$/), 'msal_dc.cache.level': 'store' });
    expect(spans.find((span) => span.name === 'msal_dc lock.claim')!.attributes).toEqual({
      'msal_dc.lock.purpose': 'flight',
      'msal_dc.lock.result': 'claimed',
    });
  });

  it("a flight waiter's operation span links to the holder's token request (its traceparent, in the MACed outcome)", async () => {
    const pair = flightPair(entra(), { telemetry: otel.telemetry }, cleanups);
    const scopes = ['https://graph.example.test/.default'];
    const tracer = otel.tracerProvider.getTracer('the-app');
    const inTrace = <T>(name: string, call: () => Promise<T>): Promise<T> =>
      tracer.startActiveSpan(name, (span) => call().finally(() => span.end()));
    let call = 0;
    const settled = await pair.inOneFlight((msal) => inTrace(`request ${++call}`, () => msal.acquireTokenByClientCredential({ scopes })));
    expect(settled.map((each) => each.status)).toEqual(['fulfilled', 'fulfilled']);
    const spans = otel.spans();
    const requests = spans.filter((span) => span.name === 'msal_dc token_request');
    expect(requests).toHaveLength(1);
    const [holder, waiter] = ['request 1', 'request 2'].map((name) => spans.find((span) => span.name === name)!);
    expect(requests[0]!.spanContext().traceId).toBe(holder!.spanContext().traceId);
    const operations = spans.filter((span) => span.name === 'msal_dc acquire_token_by_client_credential');
    const waiting = operations.find((span) => span.spanContext().traceId === waiter!.spanContext().traceId)!;
    expect(waiting.links.map((link) => link.context)).toEqual([
      expect.objectContaining({ traceId: requests[0]!.spanContext().traceId, spanId: requests[0]!.spanContext().spanId }),
    ]);
    const holding = operations.find((span) => span.spanContext().traceId === holder!.spanContext().traceId)!;
    expect(holding.links).toEqual([]);
  });

  it('a failed operation has status ERROR, its error type, and the exception with its name and message only', async () => {
    const msal = app();
    const pkce = await new CryptoProvider().generatePkceCodes();
    const code = entra().mintCode({ redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
    await msal.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: pkce.verifier });
    const duplicate = await rejectionOf(msal.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: randomUUID() }));
    expect(duplicate.code).toBe('ERR_CODE_ALREADY_REDEEMED');
    const failed = otel
      .spans()
      .filter((span) => span.name === 'msal_dc acquire_token_by_code' && span.status.code === SpanStatusCode.ERROR);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ERR_CODE_ALREADY_REDEEMED' });
    expect(failed[0]!.attributes).toEqual({ 'error.type': 'ERR_CODE_ALREADY_REDEEMED' });
    expect(failed[0]!.events.map((event) => [event.name, event.attributes])).toEqual([
      [
        'exception',
        {
          'exception.type': 'ERR_CODE_ALREADY_REDEEMED',
          'exception.message': duplicate.message,
        },
      ],
    ]);
  });
});
