// Bad options are refused when the object is built (not at first use), with a TypeError whose
// code is ERR_INVALID_ARG_* and whose message names the option; and the SingleFlight helper.
import Keyv from 'keyv';
import type { Configuration, ICachePlugin } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore } from '../../src';
import type { DistributedTokenCacheOptions } from '../../src';
import { SingleFlight } from '../../src/internal/single-flight';
import { thrownBy } from '../helpers/assertions';

/** A promise with its resolve and reject functions, to settle work exactly when a test says so. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('new DistributedTokenCache(options)', () => {
  const build = (options: unknown) => () => new DistributedTokenCache(options as DistributedTokenCacheOptions);

  it('accepts valid options, including an in-memory Keyv and a MemoryLockStore', async () => {
    const cache = new DistributedTokenCache({
      store: new Keyv(),
      lockStore: new MemoryLockStore(),
      keyPrefix: 'app:',
      storeTimeoutMs: 1,
      lockWaitTimeoutMs: 1000,
      partitionTtlMs: { account: 60_000, obo: 1000 },
      readFailure: 'miss',
      writeFailure: 'ignore',
    });
    try {
      expect(cache.atomicWrites).toBe(false);
    } finally {
      await cache.close();
    }
  });

  it('accepts no options at all', async () => {
    const cache = new DistributedTokenCache();
    await cache.close();
  });

  it.each([
    ['options.storeTimeoutMs', '0', 'ERR_INVALID_ARG_VALUE', { storeTimeoutMs: 0 }],
    ['options.storeTimeoutMs', '-1', 'ERR_INVALID_ARG_VALUE', { storeTimeoutMs: -1 }],
    ['options.storeTimeoutMs', '1.5', 'ERR_INVALID_ARG_VALUE', { storeTimeoutMs: 1.5 }],
    ['options.storeTimeoutMs', 'NaN', 'ERR_INVALID_ARG_VALUE', { storeTimeoutMs: Number.NaN }],
    ['options.storeTimeoutMs', 'Infinity', 'ERR_INVALID_ARG_VALUE', { storeTimeoutMs: Number.POSITIVE_INFINITY }],
    ['options.storeTimeoutMs', "'5'", 'ERR_INVALID_ARG_TYPE', { storeTimeoutMs: '5' }],
    ['options.storeTimeoutMs', 'null', 'ERR_INVALID_ARG_TYPE', { storeTimeoutMs: null }],
    ['options.lockWaitTimeoutMs', '0', 'ERR_INVALID_ARG_VALUE', { lockWaitTimeoutMs: 0 }],
    ['options.partitionTtlMs', '-1', 'ERR_INVALID_ARG_VALUE', { partitionTtlMs: -1 }],
    ['options.partitionTtlMs.obo', '{ obo: 0 }', 'ERR_INVALID_ARG_VALUE', { partitionTtlMs: { obo: 0 } }],
    ['options.partitionTtlMs.app', "{ app: '1' }", 'ERR_INVALID_ARG_TYPE', { partitionTtlMs: { app: '1' } }],
    ['options.partitionTtlMs', '{ user: 1 }', 'ERR_INVALID_ARG_VALUE', { partitionTtlMs: { user: 1 } }],
    ['options.partitionTtlMs', "'90d'", 'ERR_INVALID_ARG_TYPE', { partitionTtlMs: '90d' }],
    ['options.readFailure', "'maybe'", 'ERR_INVALID_ARG_VALUE', { readFailure: 'maybe' }],
    ['options.readFailure', 'true', 'ERR_INVALID_ARG_VALUE', { readFailure: true }],
    ['options.writeFailure', "'miss'", 'ERR_INVALID_ARG_VALUE', { writeFailure: 'miss' }],
    ['options.store', '{}', 'ERR_INVALID_ARG_TYPE', { store: {} }],
    ['options.store', 'a URL string', 'ERR_INVALID_ARG_TYPE', { store: 'redis://localhost:6379' }],
    ['options.keyPrefix', "''", 'ERR_INVALID_ARG_VALUE', { keyPrefix: '' }],
    ['options.keyPrefix', '5', 'ERR_INVALID_ARG_TYPE', { keyPrefix: 5 }],
    ['options.keyPrefix', 'a string with a newline', 'ERR_INVALID_ARG_VALUE', { keyPrefix: 'p\n' }],
    ['options.lockStore', '{}', 'ERR_INVALID_ARG_TYPE', { lockStore: {} }],
    ['options.lockStore', "'redis'", 'ERR_INVALID_ARG_TYPE', { lockStore: 'redis' }],
  ])('refuses %s = %s with %s naming the option', (name, _shown, code, options) => {
    const error = thrownBy(build(options));

    expect(error.code).toBe(code);
    expect(error.message).toContain(`"${name}"`);
  });

  it.each([
    ['null', null],
    ['a string', 'redis://localhost:6379'],
    ['an array', []],
  ])('refuses options that are %s with ERR_INVALID_ARG_TYPE naming "options"', (_what, options) => {
    const error = thrownBy(build(options));

    expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(error.message).toContain('"options"');
  });
});

describe('new DistributedTokenCache(options): stores that are not Keyv', () => {
  it.each([
    ['a bare Map', new Map()],
    ['null', null],
  ])('refuses %s as options.store', (_name, store) => {
    expect(() => new DistributedTokenCache({ store: store as unknown as Keyv })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"options.store"') }),
    );
  });

  it('refuses null as options.lockStore', () => {
    expect(() => new DistributedTokenCache({ lockStore: null as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"options.lockStore"') }),
    );
  });
});

describe('new DistributedClientApplication(config, options)', () => {
  const config: Configuration = {
    auth: { clientId: 'client-id', clientSecret: 'secret', authority: 'https://login.microsoftonline.com/contoso.onmicrosoft.com' },
  };
  const build = (configuration: unknown, options?: unknown) => () =>
    new DistributedClientApplication(configuration as Configuration, options as { cache?: DistributedTokenCache });

  it('accepts a configuration with a client id and a DistributedTokenCache', async () => {
    const cache = new DistributedTokenCache();
    try {
      const app = new DistributedClientApplication(config, { cache });
      expect(app.cache).toBe(cache);
      await app.close();
    } finally {
      await cache.close();
    }
  });

  it('creates its own DistributedTokenCache when none is given', async () => {
    const app = new DistributedClientApplication(config);
    try {
      expect(app.cache).toBeInstanceOf(DistributedTokenCache);
    } finally {
      await app.close();
      await app.cache.close();
    }
  });

  it.each([
    ['config', 'undefined', 'ERR_INVALID_ARG_TYPE', undefined],
    ['config', 'null', 'ERR_INVALID_ARG_TYPE', null],
    ['config.auth', 'missing', 'ERR_INVALID_ARG_TYPE', {}],
    ['config.auth.clientId', 'missing', 'ERR_INVALID_ARG_TYPE', { auth: {} }],
    ['config.auth.clientId', 'missing next to a clientSecret', 'ERR_INVALID_ARG_TYPE', { auth: { clientSecret: 'secret' } }],
    ['config.auth.clientId', "''", 'ERR_INVALID_ARG_VALUE', { auth: { clientId: '' } }],
  ])('refuses %s (%s) with %s naming it', (name, _shown, code, configuration) => {
    const error = thrownBy(build(configuration));

    expect(error.code).toBe(code);
    expect(error.message).toContain(`"${name}"`);
  });

  it('refuses config.cache.cachePlugin, which it binds itself per operation', () => {
    const cachePlugin: ICachePlugin = { beforeCacheAccess: async () => undefined, afterCacheAccess: async () => undefined };

    const error = thrownBy(build({ ...config, cache: { cachePlugin } }));

    expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(error.message).toContain('"config.cache.cachePlugin"');
  });

  it('refuses a cachePlugin taken from a DistributedTokenCache too', async () => {
    const cache = new DistributedTokenCache();
    try {
      const error = thrownBy(build({ ...config, cache: { cachePlugin: cache.plugin('uid.utid') } }, { cache }));

      expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(error.message).toContain('"config.cache.cachePlugin"');
    } finally {
      await cache.close();
    }
  });

  it.each([
    ['a plain object', {}],
    ['a Keyv store', new Keyv()],
    ['a string', 'redis://localhost:6379'],
    ['null', null],
  ])('refuses options.cache that is %s with ERR_INVALID_ARG_TYPE', (_what, cache) => {
    const error = thrownBy(build(config, { cache }));

    expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(error.message).toContain('"options.cache"');
  });

  it('refuses options that are not an object', () => {
    const error = thrownBy(build(config, 'cache'));

    expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(error.message).toContain('"options"');
  });
});

describe('SingleFlight', () => {
  it('runs the work once for concurrent calls with one key, and every caller gets its result', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    const work = jest.fn(() => gate.promise);

    const first = flights.run('key', work);
    const second = flights.run('key', work);
    const third = flights.run('key', work);

    expect(first.joined).toBe(false);
    expect(second.joined).toBe(true);
    expect(third.joined).toBe(true);
    expect(second.promise).toBe(first.promise);
    expect(third.promise).toBe(first.promise);
    expect(flights.size).toBe(1);
    gate.resolve('result');
    await expect(Promise.all([first.promise, second.promise, third.promise])).resolves.toEqual(['result', 'result', 'result']);
    expect(work).toHaveBeenCalledTimes(1);
  });

  it('runs the work of different keys separately', async () => {
    const flights = new SingleFlight<string>();
    const a = flights.run('a', async () => 'A');
    const b = flights.run('b', async () => 'B');

    expect(b.joined).toBe(false);
    expect(b.promise).not.toBe(a.promise);
    expect(flights.size).toBe(2);
    await expect(Promise.all([a.promise, b.promise])).resolves.toEqual(['A', 'B']);
  });

  it('is empty once the work resolved', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    const { promise } = flights.run('key', () => gate.promise);
    expect(flights.size).toBe(1);

    gate.resolve('done');
    await promise;

    expect(flights.size).toBe(0);
  });

  it('is empty once the work rejected, and every joined caller sees the rejection', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    const first = flights.run('key', () => gate.promise);
    const second = flights.run('key', () => gate.promise);

    gate.reject(new Error('store down'));

    await expect(first.promise).rejects.toThrow('store down');
    await expect(second.promise).rejects.toThrow('store down');
    expect(flights.size).toBe(0);
  });

  it('turns work that throws synchronously into a rejected promise and leaves no entry behind', async () => {
    const flights = new SingleFlight<string>();
    let flight: { promise: Promise<string>; joined: boolean } | undefined;

    expect(() => {
      flight = flights.run('key', () => {
        throw new Error('sync failure');
      });
    }).not.toThrow();
    await expect(flight!.promise).rejects.toThrow('sync failure');
    expect(flights.size).toBe(0);
  });

  it('runs the work again for a call after the previous one settled', async () => {
    const flights = new SingleFlight<number>();
    let runs = 0;
    const work = async (): Promise<number> => ++runs;

    const first = flights.run('key', work);
    await expect(first.promise).resolves.toBe(1);
    const second = flights.run('key', work);

    expect(second.joined).toBe(false);
    expect(second.promise).not.toBe(first.promise);
    await expect(second.promise).resolves.toBe(2);
  });

  it('runs the work again after a rejection instead of handing out the failed promise', async () => {
    const flights = new SingleFlight<string>();
    const failing = flights.run('key', async () => {
      throw new Error('first attempt failed');
    });
    await expect(failing.promise).rejects.toThrow('first attempt failed');

    const retry = flights.run('key', async () => 'second attempt');

    expect(retry.joined).toBe(false);
    await expect(retry.promise).resolves.toBe('second attempt');
  });
});
