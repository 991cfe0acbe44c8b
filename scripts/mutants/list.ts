// The curated mutations of `npm run mutants` (scripts/mutants.ts): each breaks one guarantee (G1 to
// G13, listed in docs/development.md) or one typed refusal (`ERR_*`), in one line or two, and
// names the tests that must then fail. `original` must occur exactly once in `file`: the script
// stops when it does not, so a refactor that moves the line forces this list to follow it.
// How to add one: docs/development.md, "Mutation suite".

export interface Mutation {
  /** Short and stable: `npm run mutants -- <id>` runs this one. */
  id: string;
  /** What it breaks: `G<n>` for a guarantee, or the error code of a refusal. */
  guarantee: string;
  /** What the mutated code does wrong, in words. */
  description: string;
  /** Path from the repository root. */
  file: string;
  /** The exact text replaced (exactly once in `file`). */
  original: string;
  replacement: string;
  /** Test files (from the root) that must fail. Keep them few and fast. */
  tests: string[];
  /** A jest `-t` filter, to run only the tests that matter. */
  testNamePattern?: string;
  /**
   * For a mutation that makes a call hang: jest's `--testTimeout`, so that the hang fails the test
   * sooner than the configured 60 s (the tests themselves assert no durations).
   */
  testTimeoutMs?: number;
}

/** Guarantees with no code yet: listed in the output, never invented. */
export const notBuilt = [{ guarantee: 'G12 (one token request per fleet)', until: 'issue 15' }];

const REDEEM_ONCE = 'src/redeem/redeem-once.ts';
const L1_CACHE = 'src/cache/l1/l1-cache.ts';
const REDEMPTION = 'src/redeem/redemption.ts';

export const mutations: Mutation[] = [
  // G1: exactly one token-endpoint call per code.
  {
    id: 'g1-busy-claim-redeems',
    guarantee: 'G1',
    description: 'a duplicate that finds the code claimed by another process sends it too',
    file: REDEMPTION,
    original: "if (claim.state === 'claimed') {\n        this.lease = claim.lease;",
    replacement:
      "if (claim.state === 'claimed' || claim.state === 'busy') {\n        if (claim.state === 'claimed') this.lease = claim.lease;",
    tests: ['__tests__/redeem/redeem-faults.test.ts'],
    testNamePattern: 'keeps its lease while the token endpoint is slower',
  },
  {
    id: 'g1-claim-not-durable',
    guarantee: 'G1',
    description: 'a claim counts before the replicas acknowledge it (no WAIT): a failover loses it and the code is sent again',
    file: 'src/lock/redis/replica-acks.ts',
    original: 'if (required === 0 || !client.sendCommand) return;',
    replacement: 'if (required >= 0 || !client.sendCommand) return;',
    tests: ['__tests__/failover/failover-storm.test.ts'],
    testNamePattern: 'claims acknowledged only by the old primary',
  },
  {
    id: 'g1-fail-open-after-busy',
    guarantee: 'G1',
    description: "with lockStoreFailure 'fail-open', a duplicate that saw the code busy sends it when the lock store then fails",
    file: REDEMPTION,
    original: 'if (!failOpen || seenOtherRedeemer) {',
    replacement: 'if (!failOpen) {',
    tests: ['__tests__/redeem/redeem-edges.test.ts'],
    testNamePattern: 'Edge 5',
  },
  // G2: a duplicate with the same proof gets tokens.
  {
    id: 'g2-join-refused',
    guarantee: 'G2',
    description: 'a concurrent duplicate with the same verifier is refused instead of joining',
    file: REDEEM_ONCE,
    original: 'return flight.promise;',
    replacement: "return Promise.reject(redemption.refuse('binding-mismatch'));",
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'concurrent duplicates in one process join',
  },
  {
    id: 'g2-late-duplicate-refused',
    guarantee: 'G2',
    description: 'a late duplicate with the same binding is refused instead of answered from the cache',
    file: REDEMPTION,
    original: 'result = await this.tokens.silent(outcome.homeAccountId, refresh);',
    replacement: "throw this.refuse('tokens-gone');",
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'an explicit binding',
  },
  // G3: a replayed code never yields tokens; codes only as keyed hashes.
  {
    id: 'g3-join-skips-proof',
    guarantee: 'G3',
    description: 'the in-process join (RedeemOnce.run) stops comparing proofs: a replay with another verifier joins the flight',
    file: REDEEM_ONCE,
    original: 'if (!bindingHash || flight.redemption.bindingHash !== bindingHash)',
    replacement: 'if (!bindingHash)',
    tests: ['__tests__/redeem/replay.test.ts'],
  },
  {
    id: 'g3-after-54005-skips-proof',
    guarantee: 'G3',
    description: "the answer after AADSTS54005 (afterServerSaidRedeemed) stops comparing proofs with the token store's copy",
    file: REDEMPTION,
    original: "if (mirrored?.state === 'redeemed' && this.bindingHash && mirrored.bindingHash === this.bindingHash) {",
    replacement: "if (mirrored?.state === 'redeemed' && this.bindingHash) {",
    tests: ['__tests__/redeem/replay.test.ts'],
  },
  {
    id: 'g3-answer-skips-proof',
    guarantee: 'G3',
    description: "answer() stops comparing the recorded proof with a late duplicate's",
    file: REDEMPTION,
    original: 'if (!this.bindingHash || outcome.bindingHash !== this.bindingHash)\n          throw this.refuse(',
    replacement: 'if (!this.bindingHash)\n          throw this.refuse(',
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'an explicit binding',
  },
  {
    id: 'g3-code-hash-unkeyed',
    guarantee: 'G3',
    description: "codes are hashed without the app's secret key: anyone holding a code can compute its keys and records",
    file: 'src/redeem/code-hasher.ts',
    original: "return createHmac('sha256', this.key).update(text, 'utf8').digest('hex');",
    replacement: "return createHash('sha256').update(text, 'utf8').digest('hex');",
    tests: ['__tests__/redeem/code-hash-key.test.ts'],
  },
  // G4: AADSTS54005 is recognised in both shapes.
  {
    id: 'g4-legacy-54005-missed',
    guarantee: 'G4',
    description: "AADSTS54005 is recognised only as MSAL's errorNo, so the legacy [70002, 54005] shape is missed",
    file: 'src/redeem/server-errors.ts',
    original: 'return error instanceof ServerError && aadstsCodes(error).has(54005);',
    replacement: "return error instanceof ServerError && String(error.errorNo) === '54005';",
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'AADSTS54005 from the server',
  },
  // G5: partition isolation.
  {
    id: 'g5-foreign-account-written',
    guarantee: 'G5',
    description: "the plugin writes another account's tokens into a bound partition",
    file: 'src/cache/partition-repository.ts',
    original: 'function assertBelongs(partition: PartitionKey, document: CacheDocument): void {\n  if (!belongs(partition, document)) {',
    replacement:
      'function assertBelongs(partition: PartitionKey, document: CacheDocument): void {\n  if (!belongs(partition, document) && false) {',
    tests: ['__tests__/cache/plugin.test.ts'],
    testNamePattern: "refuses to write another account's tokens",
  },
  {
    id: 'g5-foreign-record-read',
    guarantee: 'G5',
    description: "a record copied from another partition under a user's key is read as theirs",
    file: 'src/cache/partition-repository.ts',
    original: "if (result.record.partition !== partition.hash) return corrupt('foreign-partition');",
    replacement: '',
    tests: ['__tests__/cache/store-contract.test.ts'],
    testNamePattern: 'in-memory Keyv another partition',
  },
  // G6: no lost updates.
  {
    id: 'g6-redis-cas-always-writes',
    guarantee: 'G6',
    description: 'the Redis compare-and-set writes whatever version is stored',
    file: 'src/cache/redis-partition-store.ts',
    original: 'if current ~= ARGV[1] then',
    replacement: 'if false then',
    tests: ['__tests__/cache/store-contract.test.ts'],
    testNamePattern: 'Redis .*(concurrent writers|Edge 11)',
  },
  {
    id: 'g6-keyv-cas-always-writes',
    guarantee: 'G6',
    description: 'the lock-read-merge-write of stores without atomic operations writes whatever version is stored',
    file: 'src/cache/keyv-partition-store.ts',
    original: 'if (versionOf(current) !== expectedVersion) return { ok: false, current };',
    replacement: '',
    tests: ['__tests__/cache/store-contract.test.ts'],
    testNamePattern: 'in-memory Keyv .*(concurrent writers|Edge 11)',
  },
  // G7: bounded waits.
  {
    id: 'g7-no-store-deadline',
    guarantee: 'G7',
    description: 'store calls get no deadline of their own (a paused Redis hangs them)',
    file: 'src/internal/deadline.ts',
    original: '      timeoutMs,\n    );',
    replacement: '      2 ** 31 - 1,\n    );',
    tests: ['__tests__/cache/store-failures.test.ts'],
    testNamePattern: 'a first connection to a paused Redis',
  },
  {
    id: 'g7-duplicate-waits-forever',
    guarantee: 'G7',
    description: 'a duplicate waiting on a redemption elsewhere never gives up (redeem.waitTimeoutMs is ignored)',
    file: REDEMPTION,
    original: 'if (remaining <= 0) {',
    replacement: 'if (false) {',
    tests: ['__tests__/redeem/bounded-wait.test.ts'],
    testTimeoutMs: 10_000,
  },
  // G8: store failures are explicit; corrupt entries are a miss plus an event.
  {
    id: 'g8-corrupt-entry-crashes',
    guarantee: 'G8',
    description: 'a stored value that is not a record makes the call fail instead of a miss plus cache:corrupt',
    file: 'src/cache/partition-store.ts',
    original: "if (typeof value !== 'object' || Array.isArray(value)) return { kind: 'corrupt', version: '', reason: 'wrong-type' };",
    replacement: "if (typeof value !== 'object' || Array.isArray(value)) throw new Error('not a record');",
    tests: ['__tests__/cache/store-contract.test.ts'],
    testNamePattern: 'in-memory Keyv a .* entry is a miss',
  },
  {
    id: 'g8-unparsable-cache-crashes',
    guarantee: 'G8',
    description: "a record whose cache is not MSAL's JSON makes the call fail instead of a miss plus cache:corrupt",
    file: 'src/cache/partition-repository.ts',
    original: "if (!document) return corrupt('unparsable');",
    replacement: "if (!document) throw new Error('unparsable partition');",
    tests: ['__tests__/crypto/encrypted-cache.test.ts'],
    testNamePattern: 'an envelope without encryption is unparsable',
  },
  {
    id: 'g8-read-failure-hidden',
    guarantee: 'G8',
    description: "a failed read is a silent miss by default, instead of the documented readFailure: 'throw'",
    file: 'src/cache/cache-options.ts',
    original: "readFailure: requireOneOf(options.readFailure, 'options.readFailure', ['throw', 'miss'], 'throw'),",
    replacement: "readFailure: requireOneOf(options.readFailure, 'options.readFailure', ['throw', 'miss'], 'miss'),",
    tests: ['__tests__/cache/store-failures.test.ts'],
    testNamePattern: 'a silent call rejects with StoreUnavailableError by default',
  },
  // G9: bounded memory.
  {
    id: 'g9-flights-kept',
    guarantee: 'G9',
    description: 'a settled redemption stays in the in-process flight map',
    file: REDEEM_ONCE,
    original: 'if (this.flights.get(codeHash)?.promise === promise) this.flights.delete(codeHash);',
    replacement: 'void promise;',
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'concurrent duplicates in one process join',
  },
  {
    id: 'g9-claim-records-kept',
    guarantee: 'G9',
    description: "MemoryLockStore keeps a code's claim record after recordTtlMs",
    file: 'src/lock/memory-lock-store.ts',
    original: 'else this.#claims.delete(key);',
    replacement: 'else void key;',
    tests: ['__tests__/lock/lock-store-contract.test.ts'],
    testNamePattern: 'MemoryLockStore.activeKeys counts only live records',
  },
  // G10: tokens at rest can be encrypted.
  {
    id: 'g10-stored-in-plain-text',
    guarantee: 'G10',
    description: 'with encryption on, values are stored in plain text',
    file: 'src/crypto/record-cipher.ts',
    original: 'return this.keyRing.encrypt(plaintext, storageKey, { compress: this.compress });',
    replacement: 'return plaintext;',
    tests: ['__tests__/crypto/encrypted-cache.test.ts'],
    testNamePattern: 'stores partitions and redemption outcomes as envelopes',
  },
  // G11: an in-process L1 never serves what another instance replaced.
  {
    id: 'g11-invalidation-spares-reads',
    guarantee: 'G11',
    description: 'an invalidation arriving while a read of the same key is in flight does not spoil it: the older value is kept',
    file: L1_CACHE,
    original: 'if (flight) flight.generation++;',
    replacement: 'if (flight) flight.generation += 0;',
    tests: ['__tests__/cache/l1-cache.test.ts', '__tests__/cache/l1-repository.test.ts'],
    testNamePattern: 'in flight leaves no entry',
  },
  {
    id: 'g11-flush-keeps-entries',
    guarantee: 'G11',
    description: 'a flush (Redis said everything may have changed, or tracking was lost) keeps what L1 holds',
    file: L1_CACHE,
    original: 'this.#entries.clear();',
    replacement: '',
    tests: ['__tests__/cache/l1-cache.test.ts'],
  },
  {
    id: 'g11-fills-while-not-coherent',
    guarantee: 'G11',
    description: 'L1 stores reads while tracking is not established, and serves them once it is',
    file: L1_CACHE,
    original: 'const fresh = this.#coherent && ticket.epoch',
    replacement: 'const fresh = ticket.epoch',
    tests: ['__tests__/cache/l1-cache.test.ts'],
    testNamePattern: 'coherence',
  },
  {
    id: 'g11-own-write-as-read',
    guarantee: 'G11',
    description:
      "the repository takes a read ticket for its compare-and-set: a failed write keeps the entry it may have replaced, and reads racing this process's write (never announced to it) keep their older value",
    file: 'src/cache/partition-repository.ts',
    original: "this.l1?.begin(storageKey, 'write')",
    replacement: "this.l1?.begin(storageKey, 'read')",
    tests: ['__tests__/cache/l1-repository.test.ts'],
  },
  {
    id: 'err-l1-without-tracking',
    guarantee: 'ERR_INVALID_ARG_VALUE',
    description: "an L1 is accepted on a store that cannot announce other instances' writes",
    file: 'src/cache/cache-options.ts',
    original: 'if (!redis) {',
    replacement: 'if (!redis && false) {',
    tests: ['__tests__/cache/l1-repository.test.ts'],
    testNamePattern: 'refuses bounds for a store that cannot track changes',
  },
  // G13: identity never comes from an unauthenticated record.
  {
    id: 'g13-record-mac-unchecked',
    guarantee: 'G13',
    description: "a redemption record's MAC is not checked: an edited record decides whose tokens a caller gets",
    file: 'src/redeem/outcome.ts',
    original: 'return hasher.verifyRecord(storageKey, text, stored.slice(SIGNED.length, end)) ? parseOutcome(text) : undefined;',
    replacement: 'return parseOutcome(text);',
    tests: ['__tests__/redeem/record-integrity.test.ts'],
  },
  // Each ERR_* refusal: the typed error a caller branches on.
  {
    id: 'err-code-already-redeemed',
    guarantee: 'ERR_CODE_ALREADY_REDEEMED',
    description: 'a duplicate without any proof is answered as if it had one',
    file: REDEMPTION,
    original: "throw this.refuse(this.bindingHash ? 'binding-mismatch' : 'no-binding');",
    replacement: "if (this.bindingHash) throw this.refuse('binding-mismatch');",
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'an explicit binding',
  },
  {
    id: 'err-already-redeemed-after-54005',
    guarantee: 'ERR_CODE_ALREADY_REDEEMED',
    description: "AADSTS54005 without a usable record of ours reaches the caller as MSAL's raw ServerError",
    file: REDEMPTION,
    original: "throw this.refuse('already-redeemed', error);",
    replacement: 'throw error;',
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'without an outcome record',
  },
  {
    id: 'err-tokens-gone-late-duplicate',
    guarantee: 'ERR_CODE_ALREADY_REDEEMED',
    description: "a late duplicate whose tokens were removed gets MSAL's interaction-required error instead of a refusal",
    file: REDEMPTION,
    original: "throw this.refuse('tokens-gone', error);",
    replacement: 'throw error;',
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'after the user signed out',
  },
  {
    id: 'err-tokens-gone-after-54005',
    guarantee: 'ERR_CODE_ALREADY_REDEEMED',
    description: "after AADSTS54005, a refresh the server refuses reaches the caller as MSAL's raw error",
    file: REDEMPTION,
    original: "throw this.refuse('tokens-gone', refreshError);",
    replacement: 'throw refreshError;',
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'the server revoked the first tokens',
  },
  {
    id: 'err-code-expired',
    guarantee: 'ERR_CODE_EXPIRED',
    description: "AADSTS70008 is not recognised: the caller gets MSAL's error, duplicates ERR_REDEMPTION_FAILED",
    file: REDEMPTION,
    original: 'if (isCodeExpired(error)) {',
    replacement: 'if (false) {',
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'an expired code',
  },
  {
    id: 'err-redemption-outcome-unknown',
    guarantee: 'ERR_REDEMPTION_OUTCOME_UNKNOWN',
    description: 'a token request that failed after it was sent is recorded as failed, not as unknown',
    file: REDEMPTION,
    original: 'if (isOutcomeUnknown(error)) {',
    replacement: 'if (false) {',
    tests: ['__tests__/redeem/redeem-edges.test.ts'],
    testNamePattern: 'a network failure after the token request was sent',
  },
  {
    id: 'err-redemption-failed',
    guarantee: 'ERR_REDEMPTION_FAILED',
    description: 'a duplicate of a failed redemption is told the code was redeemed',
    file: REDEMPTION,
    original: "case 'failed':\n        throw this.refuse('failed');",
    replacement: "case 'failed':\n        throw this.refuse('already-redeemed');",
    tests: ['__tests__/redeem/redeem-once.test.ts'],
    testNamePattern: 'a failed first redemption',
  },
  {
    id: 'err-redemption-record-corrupt',
    guarantee: 'ERR_REDEMPTION_RECORD_CORRUPT',
    description: 'a record that fails its integrity check gives an untyped error',
    file: 'src/redeem/refusals.ts',
    original: 'return new RedemptionRecordCorruptError(',
    replacement: 'return new Error(',
    tests: ['__tests__/redeem/record-integrity.test.ts'],
  },
  {
    id: 'err-token-endpoint-unavailable',
    guarantee: 'ERR_TOKEN_ENDPOINT_UNAVAILABLE',
    description: 'a refresh after AADSTS54005 that got a 503 is treated as a refusal: tokens purged, ERR_CODE_ALREADY_REDEEMED',
    file: REDEMPTION,
    original: '} else if (isRetryable(refreshError)) {',
    replacement: '} else if (false) {',
    tests: ['__tests__/redeem/redeem-edges.test.ts'],
    testNamePattern: 'a 503 on the refresh',
  },
  {
    id: 'err-lock-timeout',
    guarantee: 'ERR_LOCK_TIMEOUT',
    description: 'a write that lost every round gives up with another error than ERR_LOCK_TIMEOUT',
    file: 'src/cache/partition-repository.ts',
    original: 'throw new LockTimeoutError(\n          `partition',
    replacement: 'throw new StoreUnavailableError(\n          `partition',
    tests: ['__tests__/cache/partition-repository.test.ts'],
    testNamePattern: 'Edge 12',
  },
  {
    id: 'err-lock-timeout-redeem',
    guarantee: 'ERR_LOCK_TIMEOUT',
    description: 'a duplicate that waited redeem.waitTimeoutMs gives up with another error than ERR_LOCK_TIMEOUT',
    file: REDEMPTION,
    original: 'throw new LockTimeoutError(\n          `a redemption of this code',
    replacement: 'throw new StoreUnavailableError(\n          `a redemption of this code',
    tests: ['__tests__/redeem/bounded-wait.test.ts'],
  },
  {
    id: 'err-store-unavailable',
    guarantee: 'ERR_STORE_UNAVAILABLE',
    description: 'a lock store that stops answering while another caller redeems gives an untyped error',
    file: REDEMPTION,
    original: 'throw new StoreUnavailableError(\n            `the lock store stopped answering',
    replacement: 'throw new Error(\n            `the lock store stopped answering',
    tests: ['__tests__/redeem/redeem-edges.test.ts'],
    testNamePattern: 'Edge 5',
  },
  {
    id: 'err-partition-mismatch',
    guarantee: 'ERR_PARTITION_MISMATCH',
    description: "a write that would put another account's tokens in a partition is refused with another error",
    file: 'src/cache/partition-repository.ts',
    original: 'throw new PartitionMismatchError(\n      `refusing to write partition',
    replacement: 'throw new StoreUnavailableError(\n      `refusing to write partition',
    tests: ['__tests__/cache/plugin.test.ts'],
    testNamePattern: "refuses to write another account's tokens",
  },
  {
    id: 'err-closed',
    guarantee: 'ERR_CLOSED',
    description: 'a closed DistributedClientApplication keeps working',
    file: 'src/client/distributed-client-application.ts',
    original: "if (this.#closed) throw new ClosedError('this DistributedClientApplication is closed; create a new one');",
    replacement: '',
    tests: ['__tests__/client/distributed-client-application.test.ts'],
    testNamePattern: 'after close',
  },
  {
    id: 'err-invalid-arg-type',
    guarantee: 'ERR_INVALID_ARG_TYPE',
    description: 'a duration that is not a number is accepted',
    file: 'src/internal/validate.ts',
    original: "if (typeof value !== 'number')\n    throw",
    replacement: "if (typeof value !== 'number' && false)\n    throw",
    tests: ['__tests__/cache/options.test.ts'],
  },
  {
    id: 'err-invalid-arg-value',
    guarantee: 'ERR_INVALID_ARG_VALUE',
    description: 'a zero or negative duration is accepted',
    file: 'src/internal/validate.ts',
    original: 'if (!Number.isSafeInteger(value) || value <= 0)',
    replacement: 'if (!Number.isSafeInteger(value))',
    tests: ['__tests__/cache/options.test.ts'],
  },
];
