// Property-based tests (fast-check, thousands of cases): bad requests are refused with a typed
// error naming the field and never reach a store; arbitrary store contents are a miss plus an
// event, never a crash and never tokens.
import { internalsOf } from '../../src/cache/cache-internals';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import Keyv from 'keyv';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore, PartitionKey } from '../../src';
import type { CacheCorruptEvent } from '../../src';
import { parseCacheDocument, toCacheDocument } from '../../src/cache/cache-document';
import { parseOutcome } from '../../src/redeem/outcome';
import { startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';

/** Values that are not a usable string: wrong types, empty, huge, control characters. */
const badString = fc.oneof(
  fc.constantFrom(undefined, null, 0, 42, true, {}, [], ['x'], ''),
  fc.string({ minLength: 1, maxLength: 8 }).map((text) => `${text}\u0000`),
  fc.string({ minLength: 1, maxLength: 8 }).map((text) => `\u0007${text}\n`),
  fc.integer({ min: 16 * 1024 + 1, max: 20_000 }).map((length) => 'c'.repeat(length)),
);

describe('bad input is refused before anything is stored or sent', () => {
  let entra: FakeEntraId;
  let store: Keyv;
  let writes: number;
  let app: DistributedClientApplication;
  beforeAll(async () => {
    entra = await startFakeEntraId();
    store = new Keyv();
    writes = 0;
    const set = store.set.bind(store);
    store.set = (async (...args: Parameters<Keyv['set']>) => {
      writes++;
      return set(...args);
    }) as Keyv['set'];
    app = new DistributedClientApplication(entra.msalConfig(), {
      cache: new DistributedTokenCache({ store, lockStore: new MemoryLockStore() }),
    });
  });
  afterAll(async () => {
    await app.cache.close();
    await entra.close();
  });

  const expectRefusal = (error: unknown, field: string): void => {
    expect(error).toBeInstanceOf(TypeError);
    expect((error as { code?: string }).code).toMatch(/^ERR_INVALID_ARG_(TYPE|VALUE)$/);
    expect((error as Error).message).toContain(`"${field}`);
  };

  it.each([
    ['request.code', (value: unknown) => ({ code: value, redirectUri, scopes: ['User.Read'] })],
    ['request.redirectUri', (value: unknown) => ({ code: 'fake-code.x', redirectUri: value, scopes: ['User.Read'] })],
    ['request.binding', (value: unknown) => ({ code: 'fake-code.x', redirectUri, scopes: ['User.Read'], binding: value })],
    ['request.codeVerifier', (value: unknown) => ({ code: 'fake-code.x', redirectUri, scopes: ['User.Read'], codeVerifier: value })],
    ['request.scopes', (value: unknown) => ({ code: 'fake-code.x', redirectUri, scopes: [value] })],
  ])('acquireTokenByCode with a bad %s: a TypeError naming it, no store write, no token call', async (field, build) => {
    await fc.assert(
      fc.asyncProperty(badString, async (value) => {
        if (field === 'request.binding' || field === 'request.codeVerifier') fc.pre(value !== undefined); // optional fields
        const error = await app.acquireTokenByCode(build(value) as never).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expectRefusal(error, field);
      }),
      { numRuns: 400 },
    );
    expect(writes).toBe(0);
    expect(entra.tokenCallCount()).toBe(0);
  });

  it('acquireTokenSilent / getAccountByHomeId with a bad homeAccountId: a TypeError, no store access', async () => {
    await fc.assert(
      fc.asyncProperty(badString, async (value) => {
        const silent = await app
          .acquireTokenSilent({ homeAccountId: value as never, scopes: ['User.Read'] })
          .catch((caught: unknown) => caught);
        expectRefusal(silent, 'homeAccountId');
        const lookup = await app.getAccountByHomeId(value as never).catch((caught: unknown) => caught);
        expectRefusal(lookup, 'homeAccountId');
      }),
      { numRuns: 400 },
    );
    expect(writes).toBe(0);
  });

  it('unicode codes, scopes and bindings of any kind are handled: a typed answer, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 32 }),
        async (code, binding) => {
          const outcome = await app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'], binding }).then(
            () => 'tokens',
            (caught: unknown) => caught,
          );
          // An unknown code: MSAL's ServerError (AADSTS70000) or, for control characters, our TypeError.
          expect(outcome === 'tokens' ? 'tokens' : (outcome as Error).name).toMatch(
            /ServerError|InvalidArgumentError|RedemptionFailedError|Error$/,
          );
          expect(outcome instanceof Error && outcome.message.includes(code) && code.length > 8).toBe(false);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('arbitrary store contents', () => {
  /** What a store may hand back: any string, JSON text, or any JSON value serialized. */
  const storedText = fc.oneof(
    fc.string(),
    fc.json(),
    fc.jsonValue().map((value) => JSON.stringify(value)),
  );

  it('parseCacheDocument never throws and accepts only documents of MSAL shape', () => {
    fc.assert(
      fc.property(storedText, (text) => {
        const document = parseCacheDocument(text);
        if (document) expect(toCacheDocument(JSON.parse(JSON.stringify(document)))).toEqual(document);
      }),
      { numRuns: 3000 },
    );
  });

  it('parseOutcome never throws and turns anything malformed into "unknown", never into tokens', () => {
    fc.assert(
      fc.property(storedText, (text) => {
        const outcome = parseOutcome(text);
        if (outcome.state === 'redeemed') {
          expect(typeof outcome.homeAccountId).toBe('string');
          expect(outcome.homeAccountId.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('random values stored under a partition key are a miss plus a cache:corrupt event, and the read never throws', async () => {
    const store = new Keyv();
    const cache = new DistributedTokenCache({ store, keyPrefix: `prop-${randomUUID()}:` });
    const corrupt: CacheCorruptEvent[] = [];
    cache.on('cache:corrupt', (event) => corrupt.push(event));
    const partition = PartitionKey.forAccount(`${randomUUID()}.${randomUUID()}`);
    const key = internalsOf(cache).repository.storageKey(partition);
    const record = fc.record(
      {
        format: fc.oneof(fc.constant('msal-distributed-cache/1'), fc.string()),
        version: fc.oneof(fc.string(), fc.integer()),
        partition: fc.oneof(fc.constant(partition.hash), fc.string()),
        cache: fc.oneof(fc.string(), fc.json(), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), fc.string(), record), async (value) => {
        await store.set(key, value);
        const before = corrupt.length;
        const snapshot = await internalsOf(cache).repository.read(partition);
        const record = value as { format?: unknown; version?: unknown; partition?: unknown; cache?: unknown } | null;
        const usable =
          record !== null &&
          typeof record === 'object' &&
          !Array.isArray(record) &&
          record.format === 'msal-distributed-cache/1' &&
          typeof record.version === 'string' &&
          record.version !== '' &&
          record.partition === partition.hash &&
          typeof record.cache === 'string' &&
          parseCacheDocument(record.cache) !== undefined;
        // Usable records are read; anything else is a miss plus exactly one cache:corrupt event.
        if (usable) expect(snapshot.version).toBe(record.version);
        else if (value !== null) expect(corrupt.length).toBe(before + 1);
        expect(Object.values(snapshot.document.Account).length).toBe(0);
      }),
      { numRuns: 2000 },
    );
    await cache.close();
  });

  it("another partition's valid blob is refused", async () => {
    const store = new Keyv();
    const cache = new DistributedTokenCache({ store });
    const corrupt: CacheCorruptEvent[] = [];
    cache.on('cache:corrupt', (event) => corrupt.push(event));
    await fc.assert(
      fc.asyncProperty(fc.uuid(), fc.uuid(), async (a, b) => {
        fc.pre(a !== b);
        const victim = PartitionKey.forAccount(`${a}.t`);
        await store.set(internalsOf(cache).repository.storageKey(victim), {
          format: 'msal-distributed-cache/1',
          version: 'v',
          partition: PartitionKey.forAccount(`${b}.t`).hash,
          cache: '{}',
        });
        const snapshot = await internalsOf(cache).repository.read(victim);
        expect(Object.keys(snapshot.document.Account)).toEqual([]);
        expect(corrupt.at(-1)?.reason).toBe('foreign-partition');
      }),
      { numRuns: 300 },
    );
    await cache.close();
  });
});
