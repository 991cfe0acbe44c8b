// Encryption at rest end to end: the real MSAL against the fake Entra ID, partitions in the real
// Redis. What Redis holds is an envelope without tokens or identities; envelopes moved to another
// key, plain text and unknown keys are misses ('cache:corrupt'); key rotation and compression.
import { randomBytes, randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, envelopeKeyId, KeyRing, PartitionKey } from '../../src';
import type { CacheCorruptEvent, EncryptionOptions } from '../../src';
import { internalsOf } from '../../src/cache/cache-internals';
import { CodeHasher } from '../../src/redeem/code-hasher';
import { RedemptionRecords } from '../../src/redeem/redemption-records';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId, FakeUser } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const keyA = { id: 'key-a', key: randomBytes(32) };
const keyB = { id: 'key-b', key: randomBytes(32).toString('base64') };

interface SignIn {
  user: FakeUser;
  homeAccountId: string;
  accessToken: string;
  idToken: string;
}

describe('encryption at rest (Redis, real MSAL)', () => {
  let entra: FakeEntraId;
  let raw: ReturnType<typeof createClient>;
  const opened: DistributedTokenCache[] = [];

  beforeAll(async () => {
    entra = await startFakeEntraId();
    raw = createClient({ url: process.env.REDIS_URL! });
    await raw.connect();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((cache) => cache.close()));
  });
  afterAll(async () => {
    raw.destroy();
    await entra.close();
  });

  /** A cache (one app instance) with its `cache:corrupt` reasons recorded. */
  function instance(keyPrefix: string, encryption?: EncryptionOptions) {
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) }),
      keyPrefix,
      ...(encryption && { encryption }),
    });
    opened.push(cache);
    const corrupt: CacheCorruptEvent['reason'][] = [];
    cache.on('cache:corrupt', (event) => corrupt.push(event.reason));
    return { cache, app: new DistributedClientApplication(entra.msalConfig(), { cache }), corrupt };
  }

  async function signIn(app: DistributedClientApplication, user: FakeUser = addRandomUser(entra)): Promise<SignIn> {
    const result = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });
    return { user, homeAccountId: result.account!.homeAccountId, accessToken: result.accessToken, idToken: result.idToken };
  }

  function storageKey(keyPrefix: string, homeAccountId: string): string {
    return `${keyPrefix}cache:{${PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId).hash}}`;
  }

  async function storedCache(key: string): Promise<string> {
    const value = await raw.hGet(key, 'cache');
    if (value === null || value === undefined) throw new Error(`nothing stored at ${key}`);
    return value;
  }

  function secretsOf(json: string, section: 'AccessToken' | 'RefreshToken'): string[] {
    const document = JSON.parse(json) as Record<string, Record<string, { secret: string }>>;
    return Object.values(document[section] ?? {}).map((entity) => entity.secret);
  }

  it('stores partitions and redemption outcomes as envelopes without tokens, usernames or account ids', async () => {
    const keyPrefix = `enc-${randomUUID()}:`;
    const keyRing = new KeyRing({ keys: [keyA], activeKeyId: keyA.id });
    const { app, cache, corrupt } = instance(keyPrefix, { keyRing });
    const signedIn = await signIn(app);
    const key = storageKey(keyPrefix, signedIn.homeAccountId);

    const stored = await storedCache(key);
    expect(stored.startsWith('mdc1.key-a.u.')).toBe(true);
    const json = keyRing.decrypt(stored, key)!;
    const [refreshToken] = secretsOf(json, 'RefreshToken');
    expect(refreshToken).toEqual(expect.any(String));
    expect(secretsOf(json, 'AccessToken')).toEqual([signedIn.accessToken]);
    const { oid, username, name } = signedIn.user;
    for (const secretOrIdentity of [signedIn.accessToken, refreshToken!, signedIn.idToken, username, oid, name, signedIn.homeAccountId]) {
      expect(stored).not.toContain(secretOrIdentity);
    }
    const whole = JSON.stringify(await raw.hGetAll(key));
    expect(whole).not.toContain(refreshToken);
    expect(whole).not.toContain(username);

    // The redeem-once outcome mirror is encrypted too, bound to its own key.
    const mirrorKeys = await raw.keys(`${keyPrefix}redeemed:*`);
    expect(mirrorKeys).toHaveLength(1);
    const mirror = (await raw.get(mirrorKeys[0]!))!;
    expect(mirror.startsWith('mdc1.key-a.')).toBe(true);
    expect(mirror).not.toContain(signedIn.homeAccountId);
    // Inside the envelope: the MACed record (edge 1), `mac1.<MAC>.<outcome JSON>`.
    const record = internalsOf(cache).values.cipher!.open(mirror, mirrorKeys[0]!)!;
    expect(record).toMatch(/^mac1\.[\w-]{43}\./);
    const outcome = JSON.parse(record.slice('mac1.'.length + 44)) as Record<string, unknown>;
    expect(outcome).toMatchObject({ state: 'redeemed', homeAccountId: signedIn.homeAccountId });

    // Another instance with the same key ring reads the partition: a cache hit, no token request.
    const refreshesBefore = entra.tokenCallCount({ grantType: 'refresh_token' });
    const other = instance(keyPrefix, { keyRing: new KeyRing({ keys: [keyA], activeKeyId: keyA.id }) });
    const silent = await other.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] });
    expect(silent.accessToken).toBe(signedIn.accessToken);
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(refreshesBefore);
    expect([...corrupt, ...other.corrupt]).toEqual([]);
  });

  it('redemption outcome records do not decrypt under another key name', async () => {
    const keyPrefix = `enc-${randomUUID()}:`;
    const { cache } = instance(keyPrefix, { keyRing: new KeyRing({ keys: [keyA], activeKeyId: keyA.id }) });
    const records = new RedemptionRecords(new CodeHasher('test-code-hash-key'), internalsOf(cache).values, 60_000);
    await records.writeCopy('one', { state: 'expired' });
    expect(await records.readCopy('one')).toEqual({ state: 'expired' });
    await raw.set(`${keyPrefix}redeemed:{two}`, (await raw.get(`${keyPrefix}redeemed:{one}`))!);
    expect(await records.readCopy('two')).toBeUndefined();
    await raw.set(`${keyPrefix}redeemed:{three}`, '{"state":"expired"}');
    expect(await records.readCopy('three')).toBeUndefined(); // plain text is never accepted
  });

  it('rotation: a record written under key A is read by a ring [A, B] with B active, and the next write re-encrypts it under B', async () => {
    const keyPrefix = `enc-${randomUUID()}:`;
    const old = instance(keyPrefix, { keyRing: new KeyRing({ keys: [keyA], activeKeyId: keyA.id }) });
    const signedIn = await signIn(old.app);
    const key = storageKey(keyPrefix, signedIn.homeAccountId);
    expect(envelopeKeyId(await storedCache(key))).toBe('key-a');

    const rotatedRing = new KeyRing({ keys: [keyA, keyB], activeKeyId: keyB.id });
    const rotated = instance(keyPrefix, { keyRing: rotatedRing });
    const hit = await rotated.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] });
    expect(hit.accessToken).toBe(signedIn.accessToken);

    const refreshed = await rotated.app.acquireTokenSilent({
      homeAccountId: signedIn.homeAccountId,
      scopes: ['User.Read'],
      forceRefresh: true,
    });
    expect(entra.verifyAccessToken(refreshed.accessToken)).toMatchObject({ oid: signedIn.user.oid });
    const rewritten = await storedCache(key);
    expect(envelopeKeyId(rewritten)).toBe('key-b');
    expect(secretsOf(rotatedRing.decrypt(rewritten, key)!, 'AccessToken')).toEqual([refreshed.accessToken]);
    expect(rotated.corrupt).toEqual([]);

    // Still readable by another [A, B] instance; an instance that never got key B cannot read it.
    const peer = instance(keyPrefix, { keyRing: new KeyRing({ keys: [keyB, keyA], activeKeyId: keyA.id }) });
    expect((await peer.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] })).accessToken).toBe(
      refreshed.accessToken,
    );
    await expect(old.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] })).rejects.toMatchObject({
      errorCode: 'no_account_in_cache',
    });
    expect(old.corrupt).toContain('undecryptable');
  });

  it("one user's encrypted record copied to another user's key is a miss, never their tokens; the next sign-in replaces it", async () => {
    const keyPrefix = `enc-${randomUUID()}:`;
    const keyRing = new KeyRing({ keys: [keyA], activeKeyId: keyA.id });
    const { app, corrupt } = instance(keyPrefix, { keyRing });
    const alice = await signIn(app);
    const bob = await signIn(app);
    const aliceKey = storageKey(keyPrefix, alice.homeAccountId);
    const bobKey = storageKey(keyPrefix, bob.homeAccountId);
    const silentBob = () => app.acquireTokenSilent({ homeAccountId: bob.homeAccountId, scopes: ['User.Read'] });

    // The whole record (its partition field included): refused before decryption.
    await raw.hSet(bobKey, await raw.hGetAll(aliceKey));
    await expect(silentBob()).rejects.toMatchObject({ errorCode: 'no_account_in_cache' });
    expect(corrupt.length).toBeGreaterThan(0);
    expect(corrupt.every((reason) => reason === 'foreign-partition' || reason === 'undecryptable')).toBe(true);

    // A new sign-in replaces the bad record.
    const bobAgain = await signIn(app, bob.user);
    expect((await silentBob()).accessToken).toBe(bobAgain.accessToken);

    // Only the ciphertext, under Bob's own partition field and version: the AAD (storage key) stops it.
    corrupt.length = 0;
    await raw.hSet(bobKey, 'cache', await storedCache(aliceKey));
    await expect(silentBob()).rejects.toMatchObject({ errorCode: 'no_account_in_cache' });
    expect(corrupt).toContain('undecryptable');
    expect(new Set(corrupt)).toEqual(new Set(['undecryptable']));

    // A flipped byte in a stored envelope is the same miss.
    const bobFinal = await signIn(app, bob.user);
    expect((await silentBob()).accessToken).toBe(bobFinal.accessToken);
    const stored = await storedCache(bobKey);
    const last = stored.charAt(stored.length - 1);
    await raw.hSet(bobKey, 'cache', `${stored.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`);
    corrupt.length = 0;
    await expect(silentBob()).rejects.toMatchObject({ errorCode: 'no_account_in_cache' });
    expect(corrupt).toEqual(expect.arrayContaining(['undecryptable']));

    // Alice is untouched throughout.
    expect((await app.acquireTokenSilent({ homeAccountId: alice.homeAccountId, scopes: ['User.Read'] })).accessToken).toBe(
      alice.accessToken,
    );
  });

  it('a plain-text record read with encryption on is undecryptable (never accepted), and an envelope without encryption is unparsable', async () => {
    const keyPrefix = `enc-${randomUUID()}:`;
    const plain = instance(keyPrefix);
    const signedIn = await signIn(plain.app);
    const key = storageKey(keyPrefix, signedIn.homeAccountId);
    expect(JSON.parse(await storedCache(key))).toHaveProperty('AccessToken');

    const encrypted = instance(keyPrefix, { keyRing: new KeyRing({ keys: [keyA], activeKeyId: keyA.id }) });
    await expect(encrypted.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] })).rejects.toMatchObject({
      errorCode: 'no_account_in_cache',
    });
    expect(encrypted.corrupt).toContain('undecryptable');

    // Signing in again through the encrypting instance replaces the plain text with an envelope.
    await signIn(encrypted.app, signedIn.user);
    expect(envelopeKeyId(await storedCache(key))).toBe('key-a');
    await expect(plain.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] })).rejects.toMatchObject({
      errorCode: 'no_account_in_cache',
    });
    expect(plain.corrupt).toContain('unparsable');
  });

  it('works the same on a Keyv store without atomic operations (in-memory Keyv)', async () => {
    const keyv = new Keyv();
    const keyRing = new KeyRing({ keys: [keyA], activeKeyId: keyA.id });
    const cache = new DistributedTokenCache({ store: keyv, encryption: { keyRing, compress: true } });
    opened.push(cache);
    const app = new DistributedClientApplication(entra.msalConfig(), { cache });
    const signedIn = await signIn(app);
    const key = storageKey('msal-dc:', signedIn.homeAccountId);
    const record = (await keyv.get(key)) as { cache: string };
    expect(record.cache.startsWith('mdc1.key-a.z.')).toBe(true);
    expect(record.cache).not.toContain(signedIn.accessToken);
    expect(secretsOf(keyRing.decrypt(record.cache, key)!, 'AccessToken')).toEqual([signedIn.accessToken]);
    expect((await app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['User.Read'] })).accessToken).toBe(
      signedIn.accessToken,
    );
  });

  it('compression: round trips, is flagged in the envelope, and is smaller than without it for a typical partition', async () => {
    const keyPrefix = `enc-${randomUUID()}:`;
    const keyRing = new KeyRing({ keys: [keyA, keyB], activeKeyId: keyA.id });
    const compressing = instance(keyPrefix, { keyRing, compress: true });
    const signedIn = await signIn(compressing.app);
    const mail = await compressing.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['Mail.Read'] });
    const key = storageKey(keyPrefix, signedIn.homeAccountId);

    const stored = await storedCache(key);
    expect(stored.startsWith('mdc1.key-a.z.')).toBe(true);
    const json = keyRing.decrypt(stored, key)!;
    expect(secretsOf(json, 'AccessToken').sort()).toEqual([signedIn.accessToken, mail.accessToken].sort());
    const uncompressed = keyRing.encrypt(json, key);
    expect(stored.length).toBeLessThan(uncompressed.length);

    // An instance without compression reads it (the envelope says how), and writes uncompressed.
    const plainInstance = instance(keyPrefix, { keyRing: new KeyRing({ keys: [keyA, keyB], activeKeyId: keyB.id }) });
    expect((await plainInstance.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['Mail.Read'] })).accessToken).toBe(
      mail.accessToken,
    );
    await plainInstance.app.acquireTokenSilent({ homeAccountId: signedIn.homeAccountId, scopes: ['Files.Read'] });
    expect((await storedCache(key)).startsWith('mdc1.key-b.u.')).toBe(true);
    expect([...compressing.corrupt, ...plainInstance.corrupt]).toEqual([]);
  });
});
