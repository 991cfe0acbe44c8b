/**
 * Runs the Express example: `npm run example:express`.
 *
 * - With AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET: signs users in with your Entra ID
 *   app registration. AZURE_AUTHORITY (a whole authority URL, for a national cloud such as
 *   https://login.microsoftonline.us/<tenant>, or any Entra-compatible authority) replaces
 *   AZURE_TENANT_ID. Without any of them: starts the embedded fake Entra ID, so it runs with no setup.
 * - With REDIS_URL: sessions (connect-redis) and tokens (DistributedTokenCache, RedisLockStore) in
 *   Redis, so several instances (same BASE_URL and SESSION_SECRET, different PORTs) can sit behind
 *   one load balancer. Without it: both in this process's memory.
 * - PORT (3000), HOST (127.0.0.1), BASE_URL (http://localhost:<PORT>): where it listens and the
 *   public URL; the redirect URI is <BASE_URL>/auth/callback.
 * - TRUST_PROXY: Express's 'trust proxy' (a hop count, or addresses) behind a TLS-terminating
 *   proxy, so that the secure session cookie of an https BASE_URL is sent.
 * - OTEL_EXPORTER_OTLP_ENDPOINT: traces and metrics over OTLP/HTTP; `--otel-console` or
 *   OTEL_CONSOLE=1: to the console (see telemetry.ts, imported first).
 */
import { telemetry, traceRequests } from './telemetry'; // first: the SDK is global before the library loads
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { RedisStore } from 'connect-redis';
import { startExampleRuntime } from '../shared/runtime';
import { createApp } from './app';

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env.PORT ?? 3000);
  const baseUrl = (env.BASE_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
  const { msal, authority, sessionClient, close } = await startExampleRuntime(env, 'example-express');

  const redirectUri = `${baseUrl}/auth/callback`;
  const app = createApp({
    msal,
    redirectUri,
    sessionSecret: env.SESSION_SECRET ?? randomBytes(32).toString('base64url'),
    ...(sessionClient && { sessionStore: new RedisStore({ client: sessionClient, prefix: 'example-express:sess:' }) }),
    authority,
  });
  if (env.TRUST_PROXY) app.set('trust proxy', /^\d+$/.test(env.TRUST_PROXY) ? Number(env.TRUST_PROXY) : env.TRUST_PROXY);
  const routes = ['/', '/signin', new URL(redirectUri).pathname, '/signout'];
  const server = createServer(traceRequests(app, routes)).listen(port, env.HOST ?? '127.0.0.1');
  await once(server, 'listening');
  if (telemetry.exporters.length > 0) console.log(`OpenTelemetry: traces and metrics to ${telemetry.exporters.join(' and ')}.`);
  console.log(`Listening on ${baseUrl} (redirect URI ${redirectUri}); Ctrl+C stops.`);

  const shutdown = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await close();
    await telemetry.shutdown(); // last: sends the spans and metrics of the shutdown too
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
