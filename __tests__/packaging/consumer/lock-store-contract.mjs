// The exported lock-store contract from ESM, under node:test (no jest in this project): every test
// passes for MemoryLockStore, so the contract's `instanceof LockTimeoutError` and `ClosedError` see
// the classes of dist/index.mjs, the ones a store throws. Run with --test-reporter=tap.
import { afterEach, beforeEach, describe, test } from 'node:test';
import { MemoryLockStore } from 'msal-distributed-cache';
import { lockStoreContract } from 'msal-distributed-cache/testing';

lockStoreContract(
  { describe, test: (name, body, timeoutMs) => test(name, { timeout: timeoutMs ?? Infinity }, body), beforeEach, afterEach },
  () => ({ a: new MemoryLockStore() }),
  { name: 'MemoryLockStore' },
);
