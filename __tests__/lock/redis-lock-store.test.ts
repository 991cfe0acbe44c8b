// RedisLockStore only: options, an existing client, and a Redis that stops answering (each fault
// test has its own redis-server, which it may pause or kill). The shared behaviour of every lock
// store is in lock-store-contract.test.ts.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { ClosedError, LockTimeoutError, RedisLockStore, StoreUnavailableError } from '../../src';
import type { Lease } from '../../src';
import { redisLockStoreInternals } from '../../src/lock/redis/redis-lock-store';
import { RedisServer, createTestCertificateAuthority, findFreePort, issueLoopbackServerCertificate } from '../../src/testing';
import type { CertificateAndKey } from '../../src/testing';
import { rejectionOf, thrownBy } from '../helpers/assertions';

const claimOptions = { leaseMs: 10_000, recordTtlMs: 60_000 };
const lockOptions = { leaseMs: 10_000, waitTimeoutMs: 1_000 };

/** The client a store opened from its url, once it has one (an event loop turn per check, no sleep). */
async function clientOf(store: RedisLockStore): Promise<{ destroy(): void }> {
  const { connection } = redisLockStoreInternals(store);
  while (!connection.client) await new Promise((resolve) => setImmediate(resolve));
  return connection.client;
}

function leaseOf(claim: Awaited<ReturnType<RedisLockStore['claim']>>): Lease {
  if (claim.state !== 'claimed') throw new Error(`expected 'claimed', got ${JSON.stringify(claim)}`);
  return claim.lease;
}

const stores: RedisLockStore[] = [];
function newStore(options: ConstructorParameters<typeof RedisLockStore>[0]): RedisLockStore {
  const store = new RedisLockStore(options);
  stores.push(store);
  return store;
}
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

describe('RedisLockStore options', () => {
  it('needs exactly one of url and client (TypeError ERR_INVALID_ARG_VALUE)', () => {
    for (const options of [{}, { url: 'x', client: {} as never }]) {
      let error: unknown;
      try {
        new RedisLockStore(options);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as { code?: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    }
  });

  it('works on an existing client and close() leaves that client open', async () => {
    const client = createClient({ url: process.env.REDIS_URL! });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const keyPrefix = `lock-${randomUUID()}:`;
      const store = newStore({ client: client as never, keyPrefix });
      const other = newStore({ url: process.env.REDIS_URL!, keyPrefix });

      const lease = await store.acquire('k', lockOptions);
      await expect(other.acquire('k', { leaseMs: 10_000, waitTimeoutMs: 150 })).rejects.toBeInstanceOf(LockTimeoutError);
      await lease.release();
      await (await other.acquire('k', lockOptions)).release();

      const claimed = leaseOf(await store.claim('c', claimOptions));
      expect(await other.claim('c', claimOptions)).toEqual({ state: 'busy' });
      expect(await store.complete(claimed, 'outcome-1', 60_000)).toBe(true);
      expect(await other.claim('c', claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
      await store.waitForChange('c', 50); // opens the store's own subscriber connection

      await store.close();
      expect(client.isOpen).toBe(true);
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.destroy();
    }
  });
});

describe('RedisLockStore connections', () => {
  it("connects a client it is given that was never connected (@keyv/redis's client connects lazily), and KeyvRedis goes on using it", async () => {
    const keyv = new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) });
    const client = (keyv.store as KeyvRedis<string>).client;
    expect(client.isOpen).toBe(false);
    try {
      const store = newStore({ client, keyPrefix: `lock-${randomUUID()}:` });
      const claimed = leaseOf(await store.claim('c', claimOptions));
      expect(await store.complete(claimed, 'outcome-1', 60_000)).toBe(true);
      expect(await store.claim('c', claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
      const key = `k-${randomUUID()}`;
      await keyv.set(key, 'v');
      expect(await keyv.get(key)).toBe('v');
    } finally {
      await keyv.disconnect();
    }
  });

  it('passes clientOptions to the client it opens from a url (here: the database)', async () => {
    const keyPrefix = `lock-${randomUUID()}:`;
    const store = newStore({ url: process.env.REDIS_URL!, clientOptions: { database: 5 }, keyPrefix });
    leaseOf(await store.claim('c', claimOptions));
    const probe = createClient({ url: process.env.REDIS_URL! });
    await probe.connect();
    try {
      const pattern = `${keyPrefix}claim:*`;
      expect(await probe.keys(pattern)).toEqual([]);
      await probe.select(5);
      expect((await probe.keys(pattern)).length).toBeGreaterThan(0);
    } finally {
      probe.destroy();
    }
  });

  it('refuses clientOptions without a url (ERR_INVALID_ARG_VALUE)', () => {
    const client = createClient({ url: process.env.REDIS_URL! });
    const error = thrownBy(() => new RedisLockStore({ client, clientOptions: { database: 1 } }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as { code?: string }).code).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('a connect that never succeeds says why: the connection error is the cause and is named in the message', async () => {
    const port = await findFreePort(); // nothing listens there
    const store = newStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300 });
    const error = await rejectionOf(store.claim('c', claimOptions));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(error.message).toContain('ECONNREFUSED');
  });
});

describe('RedisLockStore over TLS (rediss://, a private CA in clientOptions.socket)', () => {
  let server: RedisServer;
  let tlsUrl: string;
  let ca: CertificateAndKey;
  let directory: string;

  beforeAll(async () => {
    ca = createTestCertificateAuthority();
    const serverCertificate = issueLoopbackServerCertificate(ca);
    directory = mkdtempSync(join(tmpdir(), 'mdc-redis-tls-'));
    const file = (name: string, pem: string): string => {
      writeFileSync(join(directory, name), pem, { mode: 0o600 });
      return join(directory, name);
    };
    const tlsPort = await findFreePort();
    server = await RedisServer.start({
      args: [
        ...['--tls-port', String(tlsPort), '--tls-auth-clients', 'no'],
        ...[
          '--tls-cert-file',
          file('server.pem', serverCertificate.certPem),
          '--tls-key-file',
          file('server-key.pem', serverCertificate.keyPem),
        ],
        ...['--tls-ca-cert-file', file('ca.pem', ca.certPem)],
      ],
    });
    tlsUrl = `rediss://127.0.0.1:${tlsPort}`;
  });
  afterAll(async () => {
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('connects with the CA given in clientOptions, and the certificate is verified', async () => {
    const store = newStore({ url: tlsUrl, clientOptions: { socket: { tls: true, ca: [ca.certPem] } } });
    const claimed = leaseOf(await store.claim('c', claimOptions));
    expect(await store.complete(claimed, 'outcome-1', 60_000)).toBe(true);
    expect(await store.claim('c', claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
  });

  it('without that CA the connect fails, and the error names the untrusted certificate', async () => {
    const store = newStore({ url: tlsUrl, commandTimeoutMs: 500 });
    const error = await rejectionOf(store.claim('c', claimOptions));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error.cause as { code?: string }).code).toMatch(/CERT|SIGNATURE|ISSUER/);
    expect(error.message).toContain((error.cause as Error).message);
  });
});

describe('RedisLockStore on its own redis-server', () => {
  let server: RedisServer;
  let keyPrefix: string;

  beforeEach(async () => {
    server = await RedisServer.start();
    keyPrefix = `lock-${randomUUID()}:`;
  });
  afterEach(async () => {
    server.resume();
    for (const store of stores.splice(0)) await store.close();
    await server.stop();
  });

  it('while Redis is paused, acquire and claim reject with StoreUnavailableError; after it resumes the same store works again', async () => {
    const store = newStore({ url: server.url, keyPrefix, commandTimeoutMs: 200 });
    await (await store.acquire('warm-up', lockOptions)).release();

    server.pause();
    for (const call of [() => store.acquire('paused-lock', lockOptions), () => store.claim('paused-claim', claimOptions)]) {
      const error = await rejectionOf(call());
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
      expect(error.message).not.toContain('paused-');
    }

    server.resume();
    // Fresh keys: the commands that timed out may still run once Redis answers again.
    const lease = await store.acquire('resumed-lock', lockOptions);
    await lease.release();
    const claimed = leaseOf(await store.claim('resumed-claim', claimOptions));
    expect(await store.complete(claimed, 'outcome-1', 60_000)).toBe(true);
    expect(await store.claim('resumed-claim', claimOptions)).toEqual({ state: 'done', outcome: 'outcome-1' });
  });

  it('a store that first connects while Redis is paused rejects with StoreUnavailableError, then works after it resumes', async () => {
    const store = newStore({ url: server.url, keyPrefix, commandTimeoutMs: 200 });
    server.pause();
    await expect(store.acquire('k', lockOptions)).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    await expect(store.claim('c', claimOptions)).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });

    server.resume();
    await (await store.acquire('k2', lockOptions)).release();
    expect(await store.claim('c2', claimOptions)).toMatchObject({ state: 'claimed' });
  });

  it('after Redis is killed and restarted empty (no scripts loaded), the same store works again', async () => {
    const store = newStore({ url: server.url, keyPrefix, commandTimeoutMs: 200 });
    await (await store.acquire('k', lockOptions)).release();

    await server.kill();
    await expect(store.acquire('k', lockOptions)).rejects.toBeInstanceOf(StoreUnavailableError);

    await server.restart();
    // No event tells when the client has reconnected: retry while the store is unavailable.
    let lease: Lease | undefined;
    while (!lease) {
      try {
        lease = await store.acquire('k', lockOptions);
      } catch (error) {
        // Unavailable until the client reconnects; or, when an attempt that timed out on our side
        // still reached the restarted Redis (its SET sent on reconnect), 'k' is held by that lost
        // lease until its leaseMs expires: LockTimeoutError meanwhile, never anything else.
        expect([StoreUnavailableError, LockTimeoutError].some((type) => error instanceof type)).toBe(true);
        await delay(50);
      }
    }
    await lease.release();
    const claimed = leaseOf(await store.claim('c', claimOptions));
    expect(await store.complete(claimed, 'outcome-1', 60_000)).toBe(true);
  });

  it('waitForChange after close() opens no new connection', async () => {
    const raw = createClient({ url: server.url });
    raw.on('error', () => undefined);
    await raw.connect();
    try {
      const connections = async (): Promise<number> =>
        String(await raw.sendCommand(['CLIENT', 'LIST']))
          .trim()
          .split('\n').length;
      expect(await connections()).toBe(1);

      const store = newStore({ url: server.url, keyPrefix });
      await store.close();
      try {
        await store.waitForChange('k', 200).catch(() => undefined); // resolving or rejecting are both fine; reconnecting is not
        expect(await connections()).toBe(1);
      } finally {
        // Connections opened after close() are out of reach of the API and would keep jest from
        // exiting (they reconnect forever once the server stops): destroy them through internals.
        const { connection, waiters } = redisLockStoreInternals(store);
        (await waiters.subscriber?.catch(() => undefined))?.destroy();
        (await connection.connecting?.catch(() => undefined))?.destroy();
      }
    } finally {
      raw.destroy();
    }
  });

  it('close() while the first connect is under way leaves no connection open (counted with CLIENT LIST)', async () => {
    const raw = createClient({ url: server.url });
    raw.on('error', () => undefined);
    await raw.connect();
    const name = `lock-${randomUUID()}`;
    const storeConnections = async (): Promise<number> =>
      String(await raw.sendCommand(['CLIENT', 'LIST']))
        .split('\n')
        .filter((line) => line.includes(` name=${name} `)).length;
    const early = newStore({ url: server.url, keyPrefix, clientOptions: { name } });
    const late = newStore({ url: server.url, keyPrefix, clientOptions: { name } });
    try {
      // Closed right away: while the store loads the Redis client module, before it has a client.
      const earlyConnect = early.connect().then(
        () => 'connected',
        (error: unknown) => error,
      );
      await early.close();

      // Closed while its client waits for a paused Redis to answer the handshake.
      server.pause();
      const lateConnect = late.connect().catch(() => undefined);
      await once((await clientOf(late)) as unknown as EventEmitter, 'connect');
      await late.close();
      server.resume();
      await Promise.all([earlyConnect, lateConnect]);

      expect(await storeConnections()).toBe(0);
      expect(await earlyConnect).toBeInstanceOf(ClosedError);
    } finally {
      raw.destroy();
      for (const store of [early, late]) {
        // A connection left open would reconnect forever once the server stops: end it through internals.
        const client = redisLockStoreInternals(store).connection.client;
        if (client?.isOpen) client.destroy();
      }
    }
  });

  it('a call has one deadline: a client that became ready late leaves the command only the rest of commandTimeoutMs (fake clock)', async () => {
    const admin = createClient({ url: server.url });
    admin.on('error', () => undefined);
    await admin.connect();
    // Writes (every lock script) get no answer while paused; the connection handshake does.
    await admin.sendCommand(['CLIENT', 'PAUSE', '600000', 'WRITE']);
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const store = newStore({
        url: server.url,
        keyPrefix,
        commandTimeoutMs: 1_000,
        clientOptions: { socket: { connectTimeout: 600_000 } }, // the TCP connect timer runs on the real clock
      });
      server.pause(); // the client connects but is not ready: Redis does not answer its handshake
      let outcome: unknown = 'pending';
      const claim = store.claim('c', claimOptions).then(
        () => (outcome = 'claimed'),
        (error: unknown) => (outcome = error),
      );
      const client = (await clientOf(store)) as unknown as EventEmitter;
      await jest.advanceTimersByTimeAsync(900);
      const ready = once(client, 'ready');
      server.resume();
      await ready;
      await new Promise((resolve) => setImmediate(resolve)); // the claim, now sent, waits for the paused writes

      await jest.advanceTimersByTimeAsync(100); // 1000 ms after the call started
      await new Promise((resolve) => setImmediate(resolve));
      expect(outcome).toBeInstanceOf(StoreUnavailableError);
      expect((outcome as Error).message).toBe(
        "Redis claim did not answer within 1000 ms; check the store's connection (see docs/failure-modes.md)",
      );
      await jest.advanceTimersByTimeAsync(1_000); // lets the call end on code with a second deadline
      await claim;
    } finally {
      jest.useRealTimers();
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      admin.destroy();
    }
  });

  it('every key it writes has a TTL, so Redis never keeps lock or claim traces forever', async () => {
    const store = newStore({ url: server.url, keyPrefix });
    await (await store.acquire('lock', lockOptions)).release();
    const claimed = leaseOf(await store.claim('completed', claimOptions));
    await store.complete(claimed, 'outcome-1', 60_000);
    leaseOf(await store.claim('abandoned', { leaseMs: 100, recordTtlMs: 60_000 }));
    while ((await store.claim('abandoned', claimOptions)).state === 'busy') await store.waitForChange('abandoned', 50);
    await store.settle('abandoned', 'unknown', 60_000);
    await store.settle('never-claimed', 'unknown', 60_000);

    const raw = createClient({ url: server.url });
    await raw.connect();
    try {
      const keys = await raw.keys(`${keyPrefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      const ttls = Object.fromEntries(await Promise.all(keys.map(async (key) => [key, await raw.pTTL(key)] as const)));
      expect(Object.entries(ttls).filter(([, ttl]) => ttl < 0)).toEqual([]);
    } finally {
      raw.destroy();
    }
  });
});
