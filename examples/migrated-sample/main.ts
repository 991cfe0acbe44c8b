/**
 * Runs one of the two apps: `npm run example:migrated -- before`, or `-- after` (the default).
 *
 * - REDIS_URL (redis://localhost:6379): both keep sessions and tokens in Redis, as msal-node's
 *   sample does; instances with the same REDIS_URL, BASE_URL and SESSION_SECRET on different
 *   PORTs can sit behind one load balancer.
 * - AZURE_TENANT_ID (or AZURE_AUTHORITY), AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: your app
 *   registration; without them, the embedded fake Entra ID (see examples/express/README.md).
 * - PORT (3000), HOST (127.0.0.1), BASE_URL (http://localhost:<PORT>): where it listens and the
 *   public URL; the redirect URI is <BASE_URL>/auth/redirect.
 * - SESSION_SECRET: signs the session cookie (random per start when unset).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createClient } from 'redis';
import type { Express } from 'express';
import { entraFromEnv } from '../shared/runtime';
import { createApp as createBeforeApp } from './before/app';
import { createApp as createAfterApp, createMsal } from './after/app';
import { CALLBACK_PATH } from './shared';

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'after';
  if (which !== 'before' && which !== 'after') throw new Error(`Usage: main.ts [before|after] (not "${which}")`);
  const env = process.env;
  const port = Number(env.PORT ?? 3000);
  const baseUrl = (env.BASE_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
  const redirectUri = `${baseUrl}${CALLBACK_PATH}`;
  const sessionSecret = env.SESSION_SECRET ?? randomBytes(32).toString('base64url');

  const closers: (() => Promise<unknown>)[] = []; // run in reverse order
  const close = async (): Promise<void> => {
    for (const closeOne of closers.reverse()) await closeOne();
  };
  try {
    const entra = await entraFromEnv(env, `migrated-sample-${which}`);
    closers.push(() => entra.close());
    const redis = createClient({ url: env.REDIS_URL ?? 'redis://localhost:6379' });
    redis.on('error', (error: Error) => console.error(`redis: ${error.message}`));
    await redis.connect();
    closers.push(async () => redis.isOpen && (await redis.close())); // after the migration, cache.close() has closed it

    let app: Express;
    if (which === 'before') {
      app = createBeforeApp({ msalConfig: entra.msalConfig, redis, redirectUri, sessionSecret });
    } else {
      const msal = createMsal(entra.msalConfig, redis);
      closers.push(() => msal.cache.close());
      closers.push(() => msal.close()); // before the cache: redemptions in flight finish first
      await msal.warmUp(); // connect the stores and fetch the OpenID configuration before taking traffic
      app = createAfterApp({ msal, redis, redirectUri, sessionSecret });
    }
    const server = app.listen(port, env.HOST ?? '127.0.0.1');
    await once(server, 'listening');
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    console.log(`Listening on ${baseUrl} (${which} the migration; redirect URI ${redirectUri}); Ctrl+C stops.`);
  } catch (error) {
    await close();
    throw error;
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void close().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
