// The Express example's OpenTelemetry setup (examples/express/telemetry.ts): `npm run example:express`
// as its own OS process, with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a small OTLP/HTTP receiver in
// this test. The test signs in over HTTP (fetch with redirect: 'manual' plays the browser; the fake
// Entra ID's /authorize signs the user in at once), then stops the process: its shutdown sends the
// last spans and metrics, so every export has arrived once it has exited (no waiting on a timer).
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import { DEFAULT_USER, findFreePort } from 'msal-distributed-cache/testing';
import type { FakeEntraId } from 'msal-distributed-cache/testing';
import { startFakeEntraId } from '../helpers/entra';
import { startExampleProcess } from '../helpers/example-process';
import { startLoopbackServer } from '../helpers/loopback-server';

/** One POST the receiver answered. */
interface Export {
  path: string;
  contentType: string;
  status: number;
  body: string;
}

/** An OTLP/JSON attribute list: `[{ key, value: { stringValue | intValue | ... } }]`. */
type OtlpAttributes = { key: string; value: Record<string, unknown> }[];

interface OtlpSpan {
  name: string;
  kind: number;
  spanId: string;
  parentSpanId?: string;
  attributes: OtlpAttributes;
}

let entra: FakeEntraId;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  entra = await startFakeEntraId();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await entra?.close();
});

async function bodyOf(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return (request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
}

/** An OTLP/HTTP receiver: answers 200 with an empty JSON response to POSTs of /v1/traces and /v1/metrics, 404 to anything else. */
async function startOtlpReceiver(): Promise<{ url: string; exports: Export[] }> {
  const { server, url, close } = await startLoopbackServer();
  cleanups.push(close);
  const exports: Export[] = [];
  server.on('request', (request: IncomingMessage, response) => {
    void bodyOf(request).then((body) => {
      const path = request.url ?? '';
      const status = request.method === 'POST' && (path === '/v1/traces' || path === '/v1/metrics') ? 200 : 404;
      exports.push({ path, contentType: request.headers['content-type'] ?? '', status, body });
      response.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return { url, exports };
}

function attribute(attributes: OtlpAttributes, key: string): unknown {
  const value = attributes.find((entry) => entry.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

function spansIn(exports: Export[]): OtlpSpan[] {
  return exports
    .filter(({ path }) => path === '/v1/traces')
    .flatMap(({ body }) => (JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans)
    .flatMap(({ scopeSpans }) => scopeSpans.flatMap(({ spans }) => spans));
}

function metricNamesIn(exports: Export[]): string[] {
  return exports
    .filter(({ path }) => path === '/v1/metrics')
    .flatMap(({ body }) => (JSON.parse(body) as { resourceMetrics: { scopeMetrics: { metrics: { name: string }[] }[] }[] }).resourceMetrics)
    .flatMap(({ scopeMetrics }) => scopeMetrics.flatMap(({ metrics }) => metrics.map(({ name }) => name)));
}

/** Sends a request as a browser would (no redirect followed), with `cookie`; returns the status, Location and the new `sid` cookie. */
async function browse(url: string, cookie?: string): Promise<{ status: number; location: string; sid?: string; body: string }> {
  const response = await fetch(url, { redirect: 'manual', headers: cookie === undefined ? {} : { cookie } });
  const sid = response.headers
    .getSetCookie()
    .map((line) => /^sid=([^;]*)/.exec(line)?.[1])
    .find((value) => value !== undefined);
  return {
    status: response.status,
    location: response.headers.get('location') ?? '',
    ...(sid !== undefined && { sid }),
    body: await response.text(),
  };
}

test('with OTEL_EXPORTER_OTLP_ENDPOINT, a sign-in is exported over OTLP/HTTP: spans per request (none with the code) and metrics, sent by the shutdown at the latest', async () => {
  const receiver = await startOtlpReceiver();
  const port = await findFreePort();
  const appUrl = `http://127.0.0.1:${port}`;
  const { auth } = entra.msalConfig();
  const example = await startExampleProcess(join(__dirname, '../../examples/express/main.ts'), [], {
    AZURE_AUTHORITY: entra.authority,
    AZURE_CLIENT_ID: auth.clientId,
    AZURE_CLIENT_SECRET: auth.clientSecret,
    PORT: String(port),
    BASE_URL: appUrl,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: 'express-telemetry-test',
  });
  let stopped = false;
  cleanups.push(async () => stopped || example.stop());

  // The sign-in: /signin → the fake's /authorize → the callback with the code → home.
  const signIn = await browse(`${appUrl}/signin`);
  expect(signIn.status).toBe(302);
  const authorize = await browse(signIn.location);
  const callbackUrl = new URL(authorize.location, signIn.location).toString();
  expect(new URL(callbackUrl).pathname).toBe('/auth/callback');
  const code = new URL(callbackUrl).searchParams.get('code')!;
  const callback = await browse(callbackUrl, `sid=${signIn.sid}`);
  expect(callback.status).toBe(303);
  const home = await browse(`${appUrl}/`, `sid=${callback.sid}`);
  expect(home.body).toContain(`Signed in as <strong>${DEFAULT_USER.name}</strong>`);

  await example.stop(); // SIGTERM: the example closes, then flushes its providers, then exits
  stopped = true;

  const { exports } = receiver;
  expect(exports.map(({ status }) => status)).toEqual(exports.map(() => 200));
  expect(new Set(exports.map(({ path }) => path))).toEqual(new Set(['/v1/traces', '/v1/metrics']));
  for (const { contentType } of exports) expect(contentType).toMatch(/^application\/json/);

  const spans = spansIn(exports);
  const requestSpans = spans.filter(({ attributes }) => attribute(attributes, 'http.request.method') !== undefined);
  expect(
    requestSpans.map(({ name, kind, attributes }) => ({ name, kind, status: attribute(attributes, 'http.response.status_code') })),
  ).toEqual([
    { name: 'GET /signin', kind: 2, status: 302 }, // kind 2: SERVER
    { name: 'GET /auth/callback', kind: 2, status: 303 },
    { name: 'GET /', kind: 2, status: 200 },
  ]);
  for (const { attributes } of requestSpans) expect(attribute(attributes, 'http.route')).toEqual(expect.stringMatching(/^\//));
  expect(metricNamesIn(exports)).toContain('http.server.request.duration');
  // The library records through the globally registered SDK: its redemption span is a child of the callback's request span.
  const callbackSpan = requestSpans.find(({ name }) => name === 'GET /auth/callback')!;
  const byCode = spans.filter(({ name }) => name === 'msal_dc acquire_token_by_code');
  expect(byCode.map(({ parentSpanId }) => parentSpanId)).toEqual([callbackSpan.spanId]);
  expect(spans.filter(({ name }) => name === 'msal_dc token_request')).toHaveLength(1);
  expect(metricNamesIn(exports)).toEqual(
    expect.arrayContaining(['msal_dc.operation.duration', 'msal_dc.redemptions', 'msal_dc.token_requests']),
  );
  expect(JSON.stringify(exports.map(({ body }) => JSON.parse(body)))).toContain(
    '"service.name","value":{"stringValue":"express-telemetry-test"}',
  );

  // Nothing exported carries the code, the client secret or a token (the callback's query string is not recorded).
  const everything = exports.map(({ body }) => body).join('\n');
  expect([code, auth.clientSecret!, 'fake-rt.', 'eyJ'].filter((secret) => everything.includes(secret))).toEqual([]);
});
