/**
 * Runs the Fastify example: `npm run example:fastify`.
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
 * - TRUST_PROXY: Fastify's `trustProxy` (`true`, or the proxies' addresses) behind a
 *   TLS-terminating proxy, so that the secure session cookie of an https BASE_URL is sent.
 */
import { randomBytes } from 'node:crypto';
import { startExampleRuntime } from '../shared/runtime';
import { createApp, redisSessionStore } from './app';
import type { ExampleAppOptions } from './app';

/** TRUST_PROXY as Fastify's `trustProxy`: `true`, or the proxies' addresses (comma-separated IPs or CIDRs; Fastify 5.12 ignores a hop count). */
function trustProxyFrom(value: string | undefined): ExampleAppOptions['trustProxy'] | undefined {
  if (!value) return undefined;
  return value === 'true' ? true : value;
}

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env.PORT ?? 3000);
  const baseUrl = (env.BASE_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
  const { msal, authority, sessionClient, close } = await startExampleRuntime(env, 'example-fastify');

  const trustProxy = trustProxyFrom(env.TRUST_PROXY);
  const app = createApp({
    msal,
    redirectUri: `${baseUrl}/auth/callback`,
    sessionSecret: env.SESSION_SECRET ?? randomBytes(32).toString('base64url'),
    ...(sessionClient && { sessionStore: redisSessionStore({ client: sessionClient, prefix: 'example-fastify:sess:' }) }),
    authority,
    ...(trustProxy !== undefined && { trustProxy }),
  });
  await app.listen({ port, host: env.HOST ?? '127.0.0.1' });
  console.log(`Listening on ${baseUrl} (redirect URI ${baseUrl}/auth/callback); Ctrl+C stops.`);

  // app.close() stops accepting connections, closes idle ones and waits for the requests in flight.
  const shutdown = async (): Promise<void> => {
    await app.close();
    await close();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
