/**
 * Reads and writes whole partitions: validates what the store returns (a bad entry is a miss plus
 * an event, never a crash), guards partition isolation, and turns compare-and-set conflicts into
 * 3-way merges so that concurrent writers all survive. Applies the store-failure policy, and the
 * encryption at rest of partition contents when a cipher is set. With an L1, reads are answered
 * from it when it can, and what is read or written is kept in it under a ticket taken before the
 * store call (see ./l1/l1-cache); snapshots kept there are shared, so they are frozen.
 */
import { randomBytes } from 'node:crypto';
import type { RecordCipher } from '../crypto/record-cipher';
import { LockTimeoutError, MsalDistributedCacheError, PartitionMismatchError, StoreUnavailableError } from '../errors';
import type { CacheCorruptEvent, EventSink, TokenCacheEvents } from '../events';
import { emptyDocument, freezeDocument, homeAccountIdsIn, isEmptyDocument, parseCacheDocument } from './cache-document';
import type { CacheDocument } from './cache-document';
import type { L1Cache, L1Ticket } from './l1/l1-cache';
import { mergeCacheDocuments, withoutOrphans } from './merge';
import type { PartitionKey, PartitionKind } from './partition-key';
import { versionOf } from './partition-store';
import type { CompareAndSetResult, PartitionStore, ReadResult } from './partition-store';
import { partitionStorageKey } from '../storage-keys';
import type { CacheReadProbe } from '../telemetry/telemetry';

/**
 * A partition as read or written: its version (`''` = absent) and its validated contents. Never
 * mutated once returned: with an L1, every reader of the partition in this process shares it.
 */
export interface Snapshot {
  readonly version: string;
  readonly document: CacheDocument;
  /** Set when the store did not answer and `readFailure: 'miss'` made the read an empty partition. */
  readonly unavailable?: true;
}

/** A decoded read, and what it weighs in the L1 (`undefined`: not kept, such as a corrupt entry). */
interface Decoded {
  snapshot: Snapshot;
  bytes: number | undefined;
}

/**
 * What an L1 entry weighs: its heap, estimated from its JSON text. Measured on Node 20 for MSAL
 * partitions of 3.6 to 7.2 KB of JSON (one account and its tokens): about 1 byte per character
 * for the decoded strings, 1 more for the JSON MSAL deserializes (kept once per snapshot by the
 * plugin), plus about 1.9 KB (the objects, the snapshot, the key and the L1's own entry). The
 * bench measured 9.5 KB of heap per entry for 3.9 KB of JSON (this estimate: 9.9 KB), so
 * `maxBytes` bounds the heap from above; see docs/token-cache.md, "In-process L1".
 */
const L1_ENTRY_OVERHEAD_BYTES = 2048;
const l1Weight = (jsonLength: number): number => L1_ENTRY_OVERHEAD_BYTES + 2 * jsonLength;

export interface RepositoryPolicy {
  keyPrefix: string;
  partitionTtlMs: Record<PartitionKind, number>;
  readFailure: 'throw' | 'miss';
  writeFailure: 'throw' | 'ignore';
  /** Encrypts `record.cache`, bound to the storage key; without it the cache is stored as JSON text. */
  cipher?: RecordCipher | undefined;
  /**
   * How long a write keeps retrying compare-and-set rounds lost to other writers (from its turn in
   * this process's queue for the partition) before it gives up with `LockTimeoutError`.
   */
  contentionTimeoutMs: number;
}

/**
 * Backoff between lost compare-and-set rounds: "full jitter" (a random delay up to a cap that
 * doubles per round), so that writers of other processes that lost together do not retry in step.
 */
const FIRST_BACKOFF_MS = 2;
const MAX_BACKOFF_MS = 100;

export class PartitionRepository {
  /**
   * The last write queued per partition (storage key). Writes of this process to one partition
   * run one at a time, so they never compete with each other for the compare-and-set; an entry is
   * removed as soon as its queue is empty.
   */
  private readonly writeQueues = new Map<string, Promise<void>>();

  /**
   * @param l1 - the in-process L1 in front of the store, if any
   * @param l1Settled - awaited before answering from L1 (RedisInvalidations.settled)
   */
  constructor(
    private readonly store: PartitionStore,
    private readonly emit: EventSink<TokenCacheEvents>,
    private readonly policy: RepositoryPolicy,
    private readonly l1?: L1Cache<Snapshot>,
    private readonly l1Settled: () => Promise<void> = async () => undefined,
  ) {}

  /** Partitions with a write of this process queued or under way (0 when idle: queues are dropped). */
  get partitionsBeingWritten(): number {
    return this.writeQueues.size;
  }

  storageKey(partition: PartitionKey): string {
    // The hash tag keeps each partition's keys in one Redis Cluster slot.
    return partitionStorageKey(this.policy.keyPrefix, partition.hash);
  }

  /** Reads a partition; a missing or unusable one is an empty snapshot. `probe` learns where it was answered. */
  async read(partition: PartitionKey, probe?: CacheReadProbe): Promise<Snapshot> {
    const storageKey = this.storageKey(partition);
    const ticket = this.l1?.begin(storageKey, 'read');
    try {
      // An invalidation may sit unread in the tracking socket, behind this very request: read it first.
      if (this.l1?.coherent) await this.l1Settled();
      const kept = this.l1?.get(storageKey);
      if (kept) return this.reportRead(partition, kept, 'l1', probe);
      let result: ReadResult;
      try {
        result = await this.store.read(storageKey);
      } catch (error) {
        const failure = this.reportFailure('read', partition, error, this.policy.readFailure === 'miss');
        if (failure) throw failure;
        return { version: '', document: emptyDocument(), unavailable: true };
      }
      const { snapshot, bytes } = this.decode(partition, result);
      return this.reportRead(partition, bytes === undefined ? snapshot : this.keep(ticket, snapshot, bytes), 'store', probe);
    } finally {
      this.end(ticket);
    }
  }

  private reportRead(partition: PartitionKey, snapshot: Snapshot, level: 'l1' | 'store', probe: CacheReadProbe | undefined): Snapshot {
    const miss = isEmptyDocument(snapshot.document);
    if (miss) this.emit('cache:miss', { partitionHash: partition.hash });
    else this.emit('cache:hit', { partitionHash: partition.hash, level });
    if (probe) probe.level = miss ? 'miss' : level;
    return snapshot;
  }

  /** With an L1: freezes `snapshot` (it may be shared from now on) and offers it to the L1 under `ticket`. */
  private keep(ticket: L1Ticket | undefined, snapshot: Snapshot, bytes: number): Snapshot {
    if (!this.l1 || !ticket) return snapshot;
    const shared = Object.freeze({ version: snapshot.version, document: freezeDocument(snapshot.document) });
    this.l1.fill(ticket, shared, bytes);
    return shared;
  }

  /** Ends an L1 ticket not filled (a failed read or write); nothing when it was. */
  private end(ticket: L1Ticket | undefined): void {
    if (ticket) this.l1?.abandon(ticket);
  }

  /**
   * Writes `mine` over `base`, merging with whatever another writer stored in between.
   *
   * @returns the snapshot now stored (empty when the partition was deleted)
   * @throws PartitionMismatchError when `mine` holds another account's data (nothing is written)
   */
  async write(partition: PartitionKey, base: Snapshot | undefined, mine: CacheDocument): Promise<Snapshot> {
    assertBelongs(partition, mine);
    try {
      return await this.oneAtATime(this.storageKey(partition), () =>
        this.compareAndSetLoop(partition, base ?? { version: '', document: emptyDocument() }, mine),
      );
    } catch (error) {
      if (error instanceof PartitionMismatchError) throw error;
      const failure = this.reportFailure('write', partition, error, this.policy.writeFailure === 'ignore');
      if (failure) throw failure;
      return base ?? { version: '', document: emptyDocument() };
    }
  }

  /** Emits `store:error`; returns the error to throw, or `undefined` when the policy fails open. */
  private reportFailure(
    operation: 'read' | 'write',
    partition: PartitionKey,
    error: unknown,
    failOpen: boolean,
  ): MsalDistributedCacheError | undefined {
    const failure = asStoreError(error);
    const outcome = !failOpen ? 'thrown' : operation === 'read' ? 'treated-as-miss' : 'ignored';
    this.emit('store:error', { operation, partitionHash: partition.hash, code: failure.code, outcome, error: failure });
    return failOpen ? undefined : failure;
  }

  /** Runs `work` after every earlier write of this process to `storageKey` has settled. */
  private async oneAtATime<T>(storageKey: string, work: () => Promise<T>): Promise<T> {
    const previous = this.writeQueues.get(storageKey) ?? Promise.resolve();
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => (finish = resolve));
    this.writeQueues.set(storageKey, mine);
    try {
      await previous; // never rejects: queue entries only resolve
      return await work();
    } finally {
      finish();
      if (this.writeQueues.get(storageKey) === mine) this.writeQueues.delete(storageKey);
    }
  }

  /**
   * Compare-and-set rounds until one lands. A lost round means another writer landed first: merge
   * with what it stored, back off, try again. Bounded by time rather than rounds, so a hot
   * partition (the app's, a busy user's) costs latency, not errors.
   */
  private async compareAndSetLoop(partition: PartitionKey, base: Snapshot, mine: CacheDocument): Promise<Snapshot> {
    const accountPartition = partition.kind === 'account';
    const storageKey = this.storageKey(partition);
    const giveUpAt = Date.now() + this.policy.contentionTimeoutMs;
    let next = accountPartition ? withoutOrphans(mine) : mine;
    let expected = base.version;
    let baseDocument = base.document;
    for (let attempt = 1; ; attempt++) {
      const deleting = isEmptyDocument(next);
      const version = deleting ? '' : newVersion();
      const json = deleting ? '' : JSON.stringify(next);
      const record = deleting ? null : { version, partition: partition.hash, cache: this.seal(json, storageKey) };
      // Taken before the compare-and-set; a write that fails or loses drops the L1's entry.
      const ticket = this.l1?.begin(storageKey, 'write');
      let result: CompareAndSetResult;
      try {
        result = await this.store.compareAndSet(storageKey, expected, record, this.policy.partitionTtlMs[partition.kind]);
        if (result.ok) {
          // A deletion is kept as the empty snapshot it leaves: the next read is a miss without a store call.
          const written = this.keep(ticket, { version, document: next }, l1Weight(json.length));
          this.emit('cache:write', { partitionHash: partition.hash, attempts: attempt, deleted: deleting });
          return written;
        }
      } finally {
        this.end(ticket);
      }
      this.emit('cache:conflict', { partitionHash: partition.hash });
      const { snapshot: theirs } = this.decode(partition, result.current);
      next = mergeCacheDocuments(baseDocument, next, theirs.document, accountPartition);
      this.emit('cache:merge', { partitionHash: partition.hash });
      baseDocument = theirs.document;
      expected = theirs.version;
      const leftMs = giveUpAt - Date.now();
      if (leftMs <= 0) {
        throw new LockTimeoutError(
          `partition ${partition.hash} (hash) kept changing under other writers for ${this.policy.contentionTimeoutMs} ms (${attempt} attempts); retry later or raise lockWaitTimeoutMs`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(backoffMs(attempt), leftMs)));
    }
  }

  /**
   * Validates a stored record; anything unusable is an empty snapshot that the next write replaces
   * (and that is not kept in the L1, so that every read of it reports `cache:corrupt`).
   */
  private decode(partition: PartitionKey, result: ReadResult): Decoded {
    const version = versionOf(result);
    const corrupt = (reason: CacheCorruptEvent['reason']): Decoded => {
      this.emit('cache:corrupt', { partitionHash: partition.hash, reason });
      return { snapshot: { version, document: emptyDocument() }, bytes: undefined };
    };
    if (result.kind === 'absent') return { snapshot: { version: '', document: emptyDocument() }, bytes: l1Weight(0) };
    if (result.kind === 'corrupt') return corrupt(result.reason);
    if (result.record.partition !== partition.hash) return corrupt('foreign-partition');
    const text = this.open(result.record.cache, this.storageKey(partition));
    // With encryption on, plain text (or another key's or partition's envelope) is never accepted.
    if (text === undefined) return corrupt('undecryptable');
    const document = parseCacheDocument(text);
    if (!document) return corrupt('unparsable');
    if (!belongs(partition, document)) return corrupt('foreign-account');
    return { snapshot: { version, document }, bytes: l1Weight(text.length) };
  }

  private seal(text: string, storageKey: string): string {
    return this.policy.cipher ? this.policy.cipher.seal(text, storageKey) : text;
  }

  /** `undefined` when encryption is on and the value does not decrypt. */
  private open(value: string, storageKey: string): string | undefined {
    return this.policy.cipher ? this.policy.cipher.open(value, storageKey) : value;
  }
}

/** A random delay up to a cap that doubles with every lost round ("full jitter"). */
function backoffMs(lostRounds: number): number {
  return Math.random() * Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (lostRounds - 1));
}

function newVersion(): string {
  return randomBytes(12).toString('base64url');
}

/** Partition isolation: an account partition holds only that account, an app partition none. */
function belongs(partition: PartitionKey, document: CacheDocument): boolean {
  const ids = homeAccountIdsIn(document);
  switch (partition.kind) {
    case 'account':
      return [...ids].every((id) => id === partition.homeAccountId);
    case 'app':
      return ids.size === 0;
    case 'obo':
      return ids.size <= 1;
  }
}

function assertBelongs(partition: PartitionKey, document: CacheDocument): void {
  if (!belongs(partition, document)) {
    throw new PartitionMismatchError(
      `refusing to write partition ${partition.hash} (hash): it would hold another account's tokens; nothing was written. Each operation must use the partition of its own account`,
    );
  }
}

/** Keeps our typed errors (lock timeout, closed); anything else from a store is StoreUnavailableError. */
function asStoreError(error: unknown): MsalDistributedCacheError {
  if (error instanceof MsalDistributedCacheError) return error;
  return new StoreUnavailableError(
    `the token store failed: ${error instanceof Error ? error.message : String(error)}; check its connection (see docs/failure-modes.md)`,
    { cause: error },
  );
}
