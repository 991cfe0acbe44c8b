/**
 * The partition repository with telemetry on: each read and write is a span (`msal_dc cache.read`
 * with where it was answered, `msal_dc cache.write`) and counts in `msal_dc.cache.duration`. Hits,
 * misses and store errors are counted from the repository's events (see ../telemetry).
 */
import type { CacheDocument } from './cache-document';
import type { EventSink, TokenCacheEvents } from '../events';
import type { L1Cache } from './l1/l1-cache';
import type { PartitionKey } from './partition-key';
import { PartitionRepository } from './partition-repository';
import type { RepositoryPolicy, Snapshot } from './partition-repository';
import type { PartitionStore } from './partition-store';
import type { Telemetry } from '../telemetry/telemetry';

export class TracedPartitionRepository extends PartitionRepository {
  readonly #telemetry: Telemetry;

  constructor(
    telemetry: Telemetry,
    store: PartitionStore,
    emit: EventSink<TokenCacheEvents>,
    policy: RepositoryPolicy,
    l1?: L1Cache<Snapshot>,
    l1Settled?: () => Promise<void>,
  ) {
    super(store, emit, policy, l1, l1Settled);
    this.#telemetry = telemetry;
  }

  override read(partition: PartitionKey): Promise<Snapshot> {
    return this.#telemetry.cacheRead(partition.hash, (probe) => super.read(partition, probe));
  }

  override write(partition: PartitionKey, base: Snapshot | undefined, mine: CacheDocument): Promise<Snapshot> {
    return this.#telemetry.cacheWrite(partition.hash, () => super.write(partition, base, mine));
  }
}
