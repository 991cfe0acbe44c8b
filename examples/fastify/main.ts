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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createClient } from 'redis';
import type { Configuration } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from 'msal-distributed-cache';
import { FakeEntraId } from 'msal-distributed-cache/testing';
import { createApp, redisSessionStore } from './app';
import type { ExampleAppOptions } from './app';

const ENTRA_VARIABLES = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET'] as const;

/** The authority of AZURE_AUTHORITY, or of AZURE_TENANT_ID in the public cloud. */
function authorityFrom(env: NodeJS.ProcessEnv): { authority: string; knownAuthorities?: string[] } {
  if (!env.AZURE_AUTHORITY) return { authority: `https://login.microsoftonline.com/${env.AZURE_TENANT_ID}` };
  const authority = env.AZURE_AUTHORITY.replace(/\/$/, '');
  // MSAL trusts this host's own OpenID configuration instead of looking it up in the public cloud's list.
  return { authority, knownAuthorities: [new URL(authority).host] };
}

/** TRUST_PROXY as Fastify's `trustProxy`: `true`, or the proxies' addresses (comma-separated IPs or CIDRs; Fastify 5.12 ignores a hop count). */
function trustProxyFrom(value: string | undefined): ExampleAppOptions['trustProxy'] | undefined {
  if (!value) return undefined;
  return value === 'true' ? true : value;
}

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env.PORT ?? 3000);
  const baseUrl = (env.BASE_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
  const closers: (() => Promise<unknown>)[] = []; // run in reverse order at shutdown

  let msalConfig: Configuration;
  let authority: string;
  const missing = ENTRA_VARIABLES.filter((name) => !env[name] && !(name === 'AZURE_TENANT_ID' && env.AZURE_AUTHORITY));
  if (missing.length === 0) {
    const auth = authorityFrom(env);
    authority = auth.authority;
    msalConfig = { auth: { clientId: env.AZURE_CLIENT_ID!, clientSecret: env.AZURE_CLIENT_SECRET!, ...auth } };
  } else if (missing.length === ENTRA_VARIABLES.length && !env.AZURE_AUTHORITY) {
    const entra = await FakeEntraId.start();
    await entra.trustInThisProcess(); // MSAL in this process trusts the fake's throwaway CA; TLS checks stay on
    closers.push(() => entra.close());
    msalConfig = entra.msalConfig();
    authority = entra.authority;
    const caDirectory = mkdtempSync(join(tmpdir(), 'example-fastify-'));
    writeFileSync(join(caDirectory, 'fake-entra-ca.pem'), entra.caCertPem);
    closers.push(async () => rmSync(caDirectory, { recursive: true, force: true }));
    console.log(
      `No AZURE_* variables: using the embedded fake Entra ID at ${entra.origin} (signs in "${entra.registeredUsers[0]!.name}").`,
    );
    console.log(`Your browser does not know its test CA (${join(caDirectory, 'fake-entra-ca.pem')}): expect a certificate warning there.`);
  } else {
    throw new Error(
      `Set all of ${ENTRA_VARIABLES.join(', ')} (AZURE_AUTHORITY may replace AZURE_TENANT_ID; missing: ${missing.join(', ')}), or none to use the fake Entra ID`,
    );
  }

  let cache: DistributedTokenCache;
  let sessionStore: ExampleAppOptions['sessionStore'];
  if (env.REDIS_URL) {
    const url = env.REDIS_URL;
    const sessionClient = createClient({ url });
    sessionClient.on('error', (error: Error) => console.error(`redis (sessions): ${error.message}`));
    await sessionClient.connect();
    closers.push(() => sessionClient.close());
    sessionStore = redisSessionStore({ client: sessionClient, prefix: 'example-fastify:sess:' });
    cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(url) }), lockStore: new RedisLockStore({ url }) });
  } else {
    cache = new DistributedTokenCache(); // in memory: this process only
  }
  closers.push(() => cache.close());
  const msal = new DistributedClientApplication(msalConfig, { cache });
  closers.push(() => msal.close()); // closed before the cache: redemptions in flight finish first

  if (!env.SESSION_SECRET && env.REDIS_URL)
    console.warn("SESSION_SECRET is not set: other instances will not accept this one's session cookies.");
  const trustProxy = trustProxyFrom(env.TRUST_PROXY);
  const app = createApp({
    msal,
    redirectUri: `${baseUrl}/auth/callback`,
    sessionSecret: env.SESSION_SECRET ?? randomBytes(32).toString('base64url'),
    ...(sessionStore && { sessionStore }),
    authority,
    ...(trustProxy !== undefined && { trustProxy }),
  });
  await msal.warmUp(); // connect the stores and fetch the OpenID configuration before taking traffic
  await app.listen({ port, host: env.HOST ?? '127.0.0.1' });
  console.log(`Listening on ${baseUrl} (redirect URI ${baseUrl}/auth/callback); Ctrl+C stops.`);

  // app.close() stops accepting connections, closes idle ones and waits for the requests in flight.
  const shutdown = async (): Promise<void> => {
    await app.close();
    for (const close of closers.reverse()) await close();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
