// Partition keys: one per account, per app and tenant, per on-behalf-of assertion (hashed).
import { createHash, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache } from '../../src';
import { PartitionKey } from '../../src/cache/partition-key';
import type { FakeEntraId, FakeUser } from '../../src/testing';
import { thrownBy } from '../helpers/assertions';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

const HOME = '00000000-0000-0000-0000-000000000001.72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '11111111-2222-3333-4444-555555555555';
const ASSERTION = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl';

describe('PartitionKey', () => {
  describe('values and kinds', () => {
    it('forAccount is an account key that carries the homeAccountId', () => {
      const key = PartitionKey.forAccount(HOME);

      expect(key.kind).toBe('account');
      expect(key.homeAccountId).toBe(HOME);
      expect(key.value).toBe(`account:${HOME}`);
    });

    it('forApp is an app key of client id and tenant, without a homeAccountId', () => {
      const key = PartitionKey.forApp(CLIENT, 'contoso.onmicrosoft.com');

      expect(key.kind).toBe('app');
      expect(key.homeAccountId).toBeUndefined();
      expect(key.value).toBe(`app:${CLIENT}:contoso.onmicrosoft.com`);
    });

    it('forApp lower-cases the tenant, so one tenant spelled two ways is one partition', () => {
      const upper = PartitionKey.forApp(CLIENT, 'Contoso.OnMicrosoft.COM');
      const lower = PartitionKey.forApp(CLIENT, 'contoso.onmicrosoft.com');

      expect(upper.value).toBe(`app:${CLIENT}:contoso.onmicrosoft.com`);
      expect(upper.hash).toBe(lower.hash);
    });

    it('forOnBehalfOf is an obo key of client id and the SHA-256 of the assertion', () => {
      const key = PartitionKey.forOnBehalfOf(CLIENT, ASSERTION);

      expect(key.kind).toBe('obo');
      expect(key.homeAccountId).toBeUndefined();
      expect(key.value).toBe(`obo:${CLIENT}:${sha256(ASSERTION)}`);
    });

    it('forOnBehalfOf never holds the raw assertion, in its value or its hash', () => {
      const key = PartitionKey.forOnBehalfOf(CLIENT, ASSERTION);

      expect(key.value).not.toContain(ASSERTION);
      expect(key.hash).not.toContain(ASSERTION);
      expect(JSON.stringify(key)).not.toContain(ASSERTION);
      for (const part of ASSERTION.split('.')) expect(key.value).not.toContain(part);
    });

    it('forOnBehalfOf gives different keys for different assertions', () => {
      expect(PartitionKey.forOnBehalfOf(CLIENT, ASSERTION).value).not.toBe(PartitionKey.forOnBehalfOf(CLIENT, `${ASSERTION}x`).value);
    });
  });

  describe('forClient (edge 4)', () => {
    it('keeps an account partition apart per client id, and keeps the homeAccountId', () => {
      const one = PartitionKey.forAccount(HOME).forClient(CLIENT);
      const two = PartitionKey.forAccount(HOME).forClient('99999999-2222-3333-4444-555555555555');

      expect(one.kind).toBe('account');
      expect(one.homeAccountId).toBe(HOME);
      expect(one.clientId).toBe(CLIENT);
      expect(one.value).toBe(`account@${CLIENT}:${HOME}`);
      expect(new Set([one.hash, two.hash, PartitionKey.forAccount(HOME).hash]).size).toBe(3);
    });

    it('ignores the case of the client id, is idempotent, and refuses another client id once set', () => {
      const key = PartitionKey.forAccount(HOME).forClient(CLIENT);

      expect(key.forClient(CLIENT.toUpperCase())).toBe(key);
      expect(PartitionKey.forAccount(HOME).forClient(CLIENT.toUpperCase()).hash).toBe(key.hash);
      expect(thrownBy(() => key.forClient('another-client')).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(thrownBy(() => key.forClient('')).code).toBe('ERR_INVALID_ARG_VALUE');
    });

    it('never gives the key of an unscoped account, whatever the homeAccountId', () => {
      // An unscoped key is 'account:<id>'; a scoped one 'account@<encoded client id>:<id>'.
      expect(PartitionKey.forAccount(`@${CLIENT}:${HOME}`).value).not.toBe(PartitionKey.forAccount(HOME).forClient(CLIENT).value);
    });

    it('returns app and on-behalf-of keys unchanged: they carry their client id already', () => {
      const app = PartitionKey.forApp(CLIENT, 'tenant');
      const obo = PartitionKey.forOnBehalfOf(CLIENT, ASSERTION);

      expect(app.forClient(CLIENT)).toBe(app);
      expect(obo.forClient(CLIENT)).toBe(obo);
    });
  });

  describe('hash', () => {
    it('is 32 lower-case hex characters, the same for equal keys', () => {
      const hash = PartitionKey.forAccount(HOME).hash;

      expect(hash).toMatch(/^[0-9a-f]{32}$/);
      expect(PartitionKey.forAccount(HOME).hash).toBe(hash);
    });

    it('is the first 128 bits of the SHA-256 of the key value and does not reveal the homeAccountId', () => {
      const key = PartitionKey.forAccount(HOME);

      expect(key.hash).toBe(sha256(key.value).slice(0, 32));
      expect(key.hash).not.toContain(HOME.split('.')[0]);
    });

    it('differs between accounts, apps, tenants, assertions and kinds', () => {
      const keys = [
        PartitionKey.forAccount(HOME),
        PartitionKey.forAccount(`${HOME}0`),
        PartitionKey.forApp(CLIENT, 'tenant-a'),
        PartitionKey.forApp(CLIENT, 'tenant-b'),
        PartitionKey.forApp('other-client', 'tenant-a'),
        PartitionKey.forOnBehalfOf(CLIENT, ASSERTION),
        PartitionKey.forOnBehalfOf(CLIENT, 'another-assertion'),
        // The same text under different kinds:
        PartitionKey.forAccount('same'),
        PartitionKey.forApp('same', 'same'),
      ];

      expect(new Set(keys.map((key) => key.hash)).size).toBe(keys.length);
    });
  });

  describe('from', () => {
    it('returns a PartitionKey as it is', () => {
      const key = PartitionKey.forApp(CLIENT, 'tenant');

      expect(PartitionKey.from(key)).toBe(key);
    });

    it('takes a string as a homeAccountId', () => {
      const key = PartitionKey.from(HOME);

      expect(key.kind).toBe('account');
      expect(key.homeAccountId).toBe(HOME);
      expect(key.value).toBe(PartitionKey.forAccount(HOME).value);
    });

    it.each([
      ['a number', 42],
      ['null', null],
      ['undefined', undefined],
      ['a plain object shaped like a key', { kind: 'account', homeAccountId: HOME, value: `account:${HOME}` }],
    ])('refuses %s with ERR_INVALID_ARG_TYPE naming the argument', (_what, value) => {
      const error = thrownBy(() => PartitionKey.from(value as unknown as string, 'options.partitionKey'));

      expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(error.message).toContain('"options.partitionKey"');
    });

    it('names the argument "partitionKey" by default', () => {
      expect(thrownBy(() => PartitionKey.from(7 as unknown as string)).message).toContain('"partitionKey"');
    });

    it('refuses an empty string as an empty homeAccountId', () => {
      const error = thrownBy(() => PartitionKey.from(''));

      expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(error.message).toContain('"partitionKey"');
      expect(thrownBy(() => PartitionKey.from('', 'myName')).message).toContain('"myName"');
    });

    it('gives distinct keys to app partitions whose parts contain the separator', () => {
      expect(PartitionKey.forApp('a:b', 'c').hash).not.toBe(PartitionKey.forApp('a', 'b:c').hash);
    });

    it('treats client ids that differ only in case as one app (GUIDs ignore case)', () => {
      expect(PartitionKey.forApp('ABC', 'T').hash).toBe(PartitionKey.forApp('abc', 't').hash);
    });
  });

  describe('argument checks', () => {
    type Factory = (value: unknown) => PartitionKey;
    const fields: Array<[string, string, Factory, number]> = [
      ['forAccount', 'homeAccountId', (value) => PartitionKey.forAccount(value as string), 512],
      ['forApp', 'clientId', (value) => PartitionKey.forApp(value as string, 'tenant'), 512],
      ['forApp', 'tenantId', (value) => PartitionKey.forApp(CLIENT, value as string), 512],
      ['forOnBehalfOf', 'clientId', (value) => PartitionKey.forOnBehalfOf(value as string, ASSERTION), 512],
      ['forOnBehalfOf', 'oboAssertion', (value) => PartitionKey.forOnBehalfOf(CLIENT, value as string), 64 * 1024],
    ];

    describe.each(fields)('%s "%s"', (_factory, field, make, maxLength) => {
      it('accepts a value of exactly the maximum length', () => {
        expect(make('a'.repeat(maxLength))).toBeInstanceOf(PartitionKey);
      });

      it('refuses an empty string with ERR_INVALID_ARG_VALUE', () => {
        const error = thrownBy(() => make(''));

        expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
        expect(error.message).toContain(`"${field}"`);
      });

      it.each([
        ['a number', 1],
        ['undefined', undefined],
        ['null', null],
        ['an object', { toString: () => 'id' }],
      ])('refuses %s with ERR_INVALID_ARG_TYPE', (_what, value) => {
        const error = thrownBy(() => make(value));

        expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
        expect(error.message).toContain(`"${field}"`);
      });

      it.each([
        ['NUL', 'id\u0000'],
        ['a newline', 'id\nid'],
        ['a carriage return', 'id\rid'],
        ['a tab', '\tid'],
        ['an escape', 'id\u001b[31m'],
        ['DEL', 'id\u007f'],
      ])('refuses a value with %s with ERR_INVALID_ARG_VALUE', (_what, value) => {
        const error = thrownBy(() => make(value));

        expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
        expect(error.message).toContain(`"${field}"`);
        expect(error.message).toContain('control characters');
      });

      it('refuses a value one character over the maximum with ERR_INVALID_ARG_VALUE', () => {
        const error = thrownBy(() => make('a'.repeat(maxLength + 1)));

        expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
        expect(error.message).toContain(`"${field}"`);
        expect(error.message).toContain(String(maxLength));
      });
    });

    it('does not put the refused value into the message (an assertion is a bearer token)', () => {
      const assertion = `${'a'.repeat(64 * 1024)}SECRET`;

      expect(thrownBy(() => PartitionKey.forOnBehalfOf(CLIENT, assertion)).message).not.toContain('SECRET');
      expect(thrownBy(() => PartitionKey.forOnBehalfOf(CLIENT, 'SECRET\n')).message).not.toContain('SECRET');
    });
  });
});

// Edge 3: storage keys do not identify users. Object ids can be listed by anyone in the tenant, so
// an unkeyed SHA-256 of `account:<oid>.<tid>` links keys and events to users; with
// `partitionHashKey` the cache names partitions by an HMAC instead.
describe('keyed partition hashes (edge 3)', () => {
  const redirectUri = 'https://app.example.test/auth/callback';
  const UNKNOWN_ACCOUNT = `${randomUUID()}.${randomUUID()}`;
  let entra: FakeEntraId;
  let raw: ReturnType<typeof createClient>;
  beforeAll(async () => {
    entra = await startFakeEntraId();
    raw = createClient({ url: process.env.REDIS_URL! });
    await raw.connect();
  });
  afterAll(async () => {
    raw.destroy();
    await entra.close();
  });

  /** Signs one user in through an app on a cache with `partitionHashKey`; returns what the cache emitted and stored. */
  async function signInWith(partitionHashKey: string | undefined, user: FakeUser) {
    const keyPrefix = `keyed-${randomUUID()}:`;
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) }),
      keyPrefix,
      ...(partitionHashKey !== undefined && { partitionHashKey }),
    });
    const hashes = new Set<string>();
    for (const name of ['cache:hit', 'cache:miss', 'cache:write'] as const)
      cache.on(name, (event: { partitionHash: string }) => hashes.add(event.partitionHash));
    const app = new DistributedClientApplication(entra.msalConfig(), { cache });
    try {
      await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: ['User.Read'] });
      await app.acquireTokenSilent({ homeAccountId: entra.homeAccountIdOf(user), scopes: ['User.Read'] });
      const keys = await raw.keys(`${keyPrefix}cache:*`);
      const signedInHashes = [...hashes];
      // A silent call for an account that is not in the cache names its partition in the error.
      const unknown = await app
        .acquireTokenSilent({ homeAccountId: UNKNOWN_ACCOUNT, scopes: ['User.Read'] })
        .catch((error: Error) => error);
      return { hashes: signedInHashes, keys: keys.map((key) => key.slice(keyPrefix.length)), cache, unknown: unknown as Error };
    } finally {
      await cache.close();
    }
  }

  it("with a partitionHashKey, keys and events carry a keyed hash: not the SHA-256 anyone can compute, and not another key's", async () => {
    const user = addRandomUser(entra);
    const partition = PartitionKey.forAccount(entra.homeAccountIdOf(user)).forClient(entra.msalConfig().auth.clientId);
    const publicHash = sha256(partition.value).slice(0, 32);

    const one = await signInWith('a partition hash key of deployment one', user);
    const two = await signInWith('a partition hash key of deployment two', user);
    const unkeyed = await signInWith(undefined, user);

    expect(unkeyed.hashes).toEqual([publicHash]); // without the option: linkable, as documented
    expect(unkeyed.keys).toEqual([`cache:{${publicHash}}`]);
    expect(one.hashes).toHaveLength(1);
    expect(one.hashes[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(one.hashes[0]).not.toBe(publicHash);
    expect(two.hashes[0]).not.toBe(one.hashes[0]);
    expect(one.keys).toEqual([`cache:{${one.hashes[0]}}`]);
    expect(two.keys).toEqual([`cache:{${two.hashes[0]}}`]);
    // The cache names the partition for those who know the user (support), and so does its error.
    expect(one.cache.partitionHash(partition)).toBe(one.hashes[0]);
    const unknownPartition = PartitionKey.forAccount(UNKNOWN_ACCOUNT).forClient(entra.msalConfig().auth.clientId);
    const { errorMessage } = one.unknown as Error & { errorMessage: string }; // MSAL's InteractionRequiredAuthError
    expect(errorMessage).toContain(`partition ${one.cache.partitionHash(unknownPartition)}, a hash`);
    expect(errorMessage).not.toContain(unknownPartition.hash);
  });

  it('never shows the partitionHashKey when the cache is inspected (util.inspect, hidden fields too)', async () => {
    const secret = `hash-key-${randomUUID()}`;
    const cache = new DistributedTokenCache({ partitionHashKey: Buffer.from(secret) });
    try {
      const shown = inspect(cache, { depth: Infinity, showHidden: true });
      expect(shown).not.toContain(secret);
      // A Buffer is shown as its bytes: `<Buffer 68 61 73 68 ...>`.
      expect(shown).not.toContain(Buffer.from(secret).toString('hex').match(/../g)!.slice(0, 8).join(' '));
    } finally {
      await cache.close();
    }
  });

  it('refuses a partitionHashKey shorter than 16 bytes, or of another type', () => {
    expect(thrownBy(() => new DistributedTokenCache({ partitionHashKey: 'short' }))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(thrownBy(() => new DistributedTokenCache({ partitionHashKey: 42 as unknown as string }))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });
});
