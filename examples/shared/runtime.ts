/**
 * What the examples' `main.ts` set up before their web framework: the Entra ID configuration
 * (your app registration from AZURE_* variables, or the embedded fake Entra ID: `entraFromEnv`,
 * also used by examples/migrated-sample), the token cache (in memory, or Redis with REDIS_URL),
 * the `DistributedClientApplication`, and a Redis client for the session store.
 * Framework-independent; each `main.ts` adds its app, sessions and server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createClient } from 'redis';
import type { Configuration } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from 'msal-distributed-cache';
import { FakeEntraId } from 'msal-distributed-cache/testing';

const ENTRA_VARIABLES = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET'] as const;

/** What {@link startExampleRuntime} set up. */
export interface ExampleRuntime {
  msal: DistributedClientApplication;
  /** The authority users sign in with (for the sign-out redirect). */
  authority: string;
  /** A connected node-redis client for the session store, with REDIS_URL; else sessions stay in memory. */
  sessionClient?: ReturnType<typeof createClient>;
  /** Stops everything in the right order: the application (it waits for calls in flight), then the cache, the clients, the fake. */
  close(): Promise<void>;
}

/** The authority of AZURE_AUTHORITY, or of AZURE_TENANT_ID in the public cloud. */
function authorityFrom(env: NodeJS.ProcessEnv): { authority: string; knownAuthorities?: string[] } {
  if (!env.AZURE_AUTHORITY) return { authority: `https://login.microsoftonline.com/${env.AZURE_TENANT_ID}` };
  const authority = env.AZURE_AUTHORITY.replace(/\/$/, '');
  // MSAL trusts this host's own OpenID configuration instead of looking it up in the public cloud's list.
  return { authority, knownAuthorities: [new URL(authority).host] };
}

/** The Entra ID an example signs users in with: what {@link entraFromEnv} found or started. */
export interface ExampleEntra {
  /** MSAL's configuration: `auth` (client id, secret, authority, known authorities). */
  msalConfig: Configuration;
  /** The authority users sign in with (for the sign-out redirect). */
  authority: string;
  /** Stops the embedded fake Entra ID, if one was started. */
  close(): Promise<void>;
}

/**
 * Your app registration from AZURE_TENANT_ID (or AZURE_AUTHORITY), AZURE_CLIENT_ID and
 * AZURE_CLIENT_SECRET; without any of them, the embedded fake Entra ID, started and trusted by
 * this process's MSAL (TLS checks stay on).
 *
 * @param name - the example's name: temporary files carry it
 * @throws Error when only some of the variables are set
 */
export async function entraFromEnv(env: NodeJS.ProcessEnv, name: string): Promise<ExampleEntra> {
  const missing = ENTRA_VARIABLES.filter((variable) => !env[variable] && !(variable === 'AZURE_TENANT_ID' && env.AZURE_AUTHORITY));
  if (missing.length === 0) {
    const auth = authorityFrom(env);
    return {
      msalConfig: { auth: { clientId: env.AZURE_CLIENT_ID!, clientSecret: env.AZURE_CLIENT_SECRET!, ...auth } },
      authority: auth.authority,
      close: async () => undefined,
    };
  }
  if (missing.length < ENTRA_VARIABLES.length || env.AZURE_AUTHORITY) {
    throw new Error(
      `Set all of ${ENTRA_VARIABLES.join(', ')} (AZURE_AUTHORITY may replace AZURE_TENANT_ID; missing: ${missing.join(', ')}), or none to use the fake Entra ID`,
    );
  }
  const entra = await FakeEntraId.start();
  try {
    await entra.trustInThisProcess(); // MSAL in this process trusts the fake's throwaway CA; TLS checks stay on
  } catch (error) {
    await entra.close();
    throw error;
  }
  const caDirectory = mkdtempSync(join(tmpdir(), `${name}-`));
  writeFileSync(join(caDirectory, 'fake-entra-ca.pem'), entra.caCertPem);
  console.log(`No AZURE_* variables: using the embedded fake Entra ID at ${entra.origin} (signs in "${entra.registeredUsers[0]!.name}").`);
  console.log(`Your browser does not know its test CA (${join(caDirectory, 'fake-entra-ca.pem')}): expect a certificate warning there.`);
  return {
    msalConfig: entra.msalConfig(),
    authority: entra.authority,
    close: async () => {
      rmSync(caDirectory, { recursive: true, force: true });
      await entra.close();
    },
  };
}

/**
 * Sets up Entra ID, the cache and MSAL from the environment, and warms them up (stores connected,
 * OpenID configuration fetched) so that the app takes traffic only when they work.
 *
 * @param env - AZURE_TENANT_ID / AZURE_AUTHORITY, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, REDIS_URL
 * @param name - the example's name: temporary files and log lines carry it
 */
export async function startExampleRuntime(env: NodeJS.ProcessEnv, name: string): Promise<ExampleRuntime> {
  const closers: (() => Promise<unknown>)[] = []; // run in reverse order
  const close = async (): Promise<void> => {
    for (const closeOne of closers.reverse()) await closeOne();
  };
  try {
    const entra = await entraFromEnv(env, name);
    closers.push(() => entra.close());
    const { msalConfig, authority } = entra;

    let cache: DistributedTokenCache;
    let sessionClient: ExampleRuntime['sessionClient'];
    if (env.REDIS_URL) {
      const url = env.REDIS_URL;
      const client = createClient({ url });
      client.on('error', (error: Error) => console.error(`redis (sessions): ${error.message}`));
      await client.connect();
      closers.push(() => client.close());
      sessionClient = client;
      cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(url) }), lockStore: new RedisLockStore({ url }) });
    } else {
      cache = new DistributedTokenCache(); // in memory: this process only
    }
    closers.push(() => cache.close());
    const msal = new DistributedClientApplication(msalConfig, { cache });
    closers.push(() => msal.close()); // closed before the cache: redemptions in flight finish first
    await msal.warmUp(); // connect the stores and fetch the OpenID configuration before taking traffic

    if (!env.SESSION_SECRET && env.REDIS_URL)
      console.warn("SESSION_SECRET is not set: other instances will not accept this one's session cookies.");
    return { msal, authority, ...(sessionClient && { sessionClient }), close };
  } catch (error) {
    await close();
    throw error;
  }
}
