// The exported lock-store contract from CommonJS, under node:test (see lock-store-contract.mjs): the
// contract in dist/testing.js checks errors against the classes of dist/index.js.
const { afterEach, beforeEach, describe, test } = require('node:test');
const { MemoryLockStore } = require('msal-distributed-cache');
const { lockStoreContract } = require('msal-distributed-cache/testing');

lockStoreContract(
  { describe, test: (name, body, timeoutMs) => test(name, { timeout: timeoutMs ?? Infinity }, body), beforeEach, afterEach },
  () => ({ a: new MemoryLockStore() }),
  { name: 'MemoryLockStore' },
);
