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

export class PartitionCachePlugin implements ICachePlugin {
  private snapshot: Snapshot | undefined;
  /** The JSON of `snapshot.document`, made once per snapshot (MSAL may load it several times per operation). */
  private serialized: { snapshot: Snapshot; json: string } | undefined;

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
    if (this.serialized?.snapshot !== snapshot) this.serialized = { snapshot, json: JSON.stringify(snapshot.document) };
    // Always replace MSAL's in-memory state, so data removed from the store does not come back.
    context.tokenCache.deserialize(this.serialized.json);
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
