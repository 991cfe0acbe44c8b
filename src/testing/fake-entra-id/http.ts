// The fake Entra ID's HTTP side: the HTTPS server on a loopback port, routing by tenant and path,
// request parsing and response writing, and the endpoints that are more than a document:
// `/authorize` (a redirect or a form post carrying a new code), `/token` (which applies the test
// controls: logging, held answers, latency, injected failures) and `/logout`.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { issueLoopbackServerCertificate } from '../certificates';
import type { CertificateAndKey } from '../certificates';
import type { Controls } from './controls';
import type { Grants } from './grants';
import { instanceDiscovery, openIdConfiguration } from './metadata';
import type { Location } from './metadata';
import { sha256 } from './tokens';
import type { TokenRequestRecord } from './types';

/** What the endpoints serve from: the fake's public fields, its grants and its test controls. */
export interface Served {
  readonly fake: Location & { readonly tokenLatencyMs: number };
  readonly grants: Grants;
  readonly controls: Controls;
}

/** Starts an HTTPS server on an ephemeral loopback port, with a certificate signed by `ca`. */
export async function listenOnLoopback(ca: CertificateAndKey): Promise<{ server: Server; port: number }> {
  const serverCertificate = issueLoopbackServerCertificate(ca);
  const server = createServer({ cert: serverCertificate.certPem, key: serverCertificate.keyPem });
  // Never close idle connections from this side: clients (undici: 4 s) close theirs first, as
  // with the real Entra ID. With Node's default 5 s, a stall of the process that hosts both
  // this fake and its client (GC, a loaded CI machine) lets both timers expire together, and
  // requests go out on sockets the server has just reset: ECONNRESET, as a network_error.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** Answers every request to `server` from `served`. */
export function serve(server: Server, served: Served): void {
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    route(served, request, response).catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, { error: 'server_error', error_description: String(error) });
    });
  });
}

/** Stops `server` and drops its open connections (including those of unanswered requests). */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function route(served: Served, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { fake, grants, controls } = served;
  const url = new URL(request.url ?? '/', fake.origin);
  const segments = url.pathname.split('/').filter(Boolean);
  const path = segments.slice(1).join('/');
  if (url.pathname.startsWith('/common/discovery/instance')) {
    controls.count('instance-discovery');
    return sendJson(response, 200, instanceDiscovery(fake, url));
  }
  const tenant = segments[0] ?? '';
  if (![fake.tenantId, 'common', 'organizations'].includes(tenant))
    return sendJson(response, 400, { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found.` });
  switch (`${request.method} ${path}`) {
    case 'GET v2.0/.well-known/openid-configuration':
      controls.count('openid-configuration');
      return sendJson(response, 200, openIdConfiguration(fake));
    case 'GET discovery/v2.0/keys':
      controls.count('keys');
      return sendJson(response, 200, grants.signer.jwks());
    case 'GET oauth2/v2.0/authorize':
      return authorizeEndpoint(served, url, response);
    case 'GET oauth2/v2.0/logout': {
      controls.count('logout');
      const target = url.searchParams.get('post_logout_redirect_uri');
      response.writeHead(target ? 302 : 200, target ? { location: target } : { 'content-type': 'text/plain' });
      return void response.end(target ? undefined : 'Signed out');
    }
    case 'POST oauth2/v2.0/token':
      return tokenEndpoint(served, request, response);
    default:
      return sendJson(response, 404, { error: 'not_found', error_description: `No endpoint ${request.method} ${url.pathname}` });
  }
}

function authorizeEndpoint({ grants, controls }: Served, url: URL, response: ServerResponse): void {
  controls.count('authorize');
  const params = url.searchParams;
  const clientId = params.get('client_id') ?? '';
  const redirectUri = params.get('redirect_uri') ?? '';
  const client = grants.clients.get(clientId);
  if (!client) return sendText(response, 400, `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`);
  if (!redirectUri || (client.redirectUris && !client.redirectUris.includes(redirectUri))) {
    return sendText(
      response,
      400,
      `AADSTS50011: The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application.`,
    );
  }
  const loginHint = params.get('login_hint');
  const user = (loginHint && grants.users.find((candidate) => candidate.username === loginHint)) || grants.users[0]!;
  const code = grants.mintCode({
    clientId,
    redirectUri,
    user,
    scopes: (params.get('scope') ?? '').split(' ').filter(Boolean),
    ...(params.get('nonce') !== null && { nonce: params.get('nonce')! }),
    ...(params.get('code_challenge') !== null && {
      codeChallenge: params.get('code_challenge')!,
      codeChallengeMethod: params.get('code_challenge_method') ?? 'plain',
    }),
  });
  const answer: Record<string, string> = { code, client_info: grants.clientInfo(user), session_state: randomUUID() };
  const state = params.get('state');
  if (state !== null) answer.state = state;
  if (params.get('response_mode') === 'form_post') {
    const inputs = Object.entries(answer)
      .map(([key, value]) => `<input type="hidden" name="${escapeHtml(key)}" value="${escapeHtml(value)}">`)
      .join('');
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return void response.end(
      `<!doctype html><html><body onload="document.forms[0].submit()"><form method="POST" action="${escapeHtml(redirectUri)}">${inputs}<noscript><button>Continue</button></noscript></form></body></html>`,
    );
  }
  const target = new URL(redirectUri);
  for (const [key, value] of Object.entries(answer)) target.searchParams.set(key, value);
  response.writeHead(302, { location: target.toString() });
  response.end();
}

async function tokenEndpoint({ fake, grants, controls }: Served, request: IncomingMessage, response: ServerResponse): Promise<void> {
  controls.count('token');
  const params = new URLSearchParams(await readBody(request));
  const grantType = params.get('grant_type') ?? '';
  const clientId = params.get('client_id') ?? '';
  const code = params.get('code');
  const record: TokenRequestRecord = {
    grantType,
    clientId,
    outcome: 200,
    at: controls.now(),
    ...(code !== null && grantType === 'authorization_code' && { codeHash: sha256(code) }),
  };
  controls.recordTokenRequest(record);
  const held = controls.held;
  if (held) await held;
  // unref'd: a test that kills the caller mid-request must not be kept alive by this timer
  if (fake.tokenLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.tokenLatencyMs).unref());

  const failure = controls.takeFailure(grantType);
  if (failure === 'hang') {
    record.outcome = 'unanswered';
    return; // close() destroys the connection
  }
  if (failure === 'drop') {
    record.outcome = 'dropped';
    return void request.socket.destroy();
  }
  if (failure === 'http500' || failure === 'http503') {
    record.outcome = failure === 'http500' ? 500 : 503;
    return sendJson(response, record.outcome, {
      error: 'temporarily_unavailable',
      error_description: `AADSTS50196: The server encountered an unexpected error (injected ${failure}).`,
      error_codes: [50196],
      correlation_id: request.headers['client-request-id'] ?? randomUUID(),
    });
  }
  const result = grants.grant(grantType, params, String(request.headers['client-request-id'] ?? randomUUID()));
  if (failure === 'redeemThenDrop') {
    record.outcome = 'dropped';
    return void request.socket.destroy();
  }
  record.outcome = result.status;
  sendJson(response, result.status, result.body);
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  response.end(text);
}

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  response.end(text);
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
