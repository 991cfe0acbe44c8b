/**
 * The MSAL ICachePlugin bound to one partition. Before MSAL touches its cache, it loads the
 * partition; after MSAL changed it, it writes the partition back (compare-and-set and merge).
 * For code redemption the partition is not known in advance: it is taken from the account that
 * MSAL writes, and nothing is read before (an empty key is never read or written).
 */
import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import { PartitionMismatchError } from '../errors';
import { accountIdsIn, parseCacheDocument } from './cache-document';
import { PartitionKey } from './partition-key';
import type { PartitionRepository, Snapshot } from './partition-repository';

/**
 * The JSON MSAL deserializes, made once per snapshot object, whichever plugin loads it: MSAL
 * loads a partition several times per operation, and a snapshot served from memory (the L1) is the
 * same object for every operation that reads it until the partition changes. Snapshots are never
 * modified after they are made (a write makes a new one), so the text always matches the document.
 */
const msalJson = new WeakMap<Snapshot, string>();

/** The JSON of a snapshot's document, as MSAL deserializes it (made once per snapshot). */
export function msalJsonOf(snapshot: Snapshot): string {
  let json = msalJson.get(snapshot);
  if (json === undefined) {
    json = JSON.stringify(snapshot.document);
    msalJson.set(snapshot, json);
  }
  return json;
}

export class PartitionCachePlugin implements ICachePlugin {
  private snapshot: Snapshot | undefined;

  /**
   * @param partition - the partition, or `undefined` to take it from the account MSAL writes
   * @param reuseSnapshot - serve repeated reads from the last snapshot (one operation's client);
   *   compare-and-set still catches anything that changed in between
   * @param scope - names a deferred (redemption) account partition as the cache does (per client
   *   id, keyed hash), as it named `partition`
   */
  constructor(
    private readonly repository: PartitionRepository,
    private partition: PartitionKey | undefined,
    private readonly reuseSnapshot = false,
    private readonly scope: (partition: PartitionKey) => PartitionKey = (partition) => partition,
  ) {}

  /** The partition this plugin is bound to (after a deferred one was resolved). */
  get partitionKey(): PartitionKey | undefined {
    return this.partition;
  }

  /** The partition's contents as last read or written by this plugin. */
  get lastSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  /** Reads the partition (once per operation when snapshots are reused); `undefined` before a deferred partition is known. */
  async load(): Promise<Snapshot | undefined> {
    if (!this.partition) return undefined;
    if (!this.snapshot || !this.reuseSnapshot) this.snapshot = await this.repository.read(this.partition);
    return this.snapshot;
  }

  async beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    const snapshot = await this.load();
    if (!snapshot) return;
    // Always replace MSAL's in-memory state, so data removed from the store does not come back.
    context.tokenCache.deserialize(msalJsonOf(snapshot));
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    const mine = parseCacheDocument(context.tokenCache.serialize());
    if (!mine) throw new PartitionMismatchError('MSAL produced a cache this library cannot read; nothing was written');
    const partition = this.partition ?? this.scope(partitionOfRedemption(accountIdsIn(mine)));
    this.snapshot = await this.repository.write(partition, this.snapshot, mine);
    this.partition = partition;
  }
}

function partitionOfRedemption(accountIds: string[]): PartitionKey {
  const distinct = [...new Set(accountIds)];
  if (distinct.length !== 1) {
    throw new PartitionMismatchError(
      `cannot tell which account partition to write: MSAL wrote ${distinct.length} accounts; nothing was written`,
    );
  }
  return PartitionKey.forAccount(distinct[0]!);
}
