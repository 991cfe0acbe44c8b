/**
 * The in-process L1's figures (`msal_dc.l1.entries`, `msal_dc.l1.size`, `msal_dc.l1.evictions`),
 * observed at each collection from the L1s' `stats`. A meter is shared by every cache given the
 * same provider: one callback per meter reports the sum of its caches' L1s. The L1s are held
 * weakly (a no-op meter never calls back, and a cache that is never closed must not be kept alive).
 */
import type { Meter } from '@opentelemetry/api';
import { METRIC } from './names';

/** What the L1 figures are read from (L1Cache's `stats`). */
export interface L1StatsSource {
  readonly stats: { readonly entries: number; readonly bytes: number; readonly evictions: number };
}

type Sources = Set<WeakRef<L1StatsSource>>;

/** The L1s observed per meter. */
const l1Sources = new WeakMap<Meter, Sources>();

/** The L1 instruments of `meter`, observing the sum of `sources` (nothing while there is none). */
function observeL1s(meter: Meter, sources: Sources): void {
  const entries = meter.createObservableGauge(METRIC.l1Entries, { unit: '{entry}', description: 'Partitions held by the in-process L1' });
  const size = meter.createObservableGauge(METRIC.l1Size, { unit: 'By', description: 'Estimated heap held by the in-process L1' });
  const evictions = meter.createObservableCounter(METRIC.l1Evictions, {
    unit: '{entry}',
    description: 'Partitions the L1 dropped to stay in its bounds',
  });
  meter.addBatchObservableCallback(
    (result) => {
      let [live, held, bytes, evicted] = [0, 0, 0, 0];
      for (const source of liveSources(sources)) {
        const { stats } = source;
        live++;
        held += stats.entries;
        bytes += stats.bytes;
        evicted += stats.evictions;
      }
      if (live === 0) return;
      result.observe(entries, held);
      result.observe(size, bytes);
      result.observe(evictions, evicted);
    },
    [entries, size, evictions],
  );
}

/** The L1s still alive (the others are dropped from `sources`). */
function* liveSources(sources: Sources): Generator<L1StatsSource> {
  for (const ref of sources) {
    const source = ref.deref();
    if (source === undefined) sources.delete(ref);
    else yield source;
  }
}

/** Observes `l1` with `meter`'s L1 instruments until the returned function is called. */
export function observeL1(meter: Meter, l1: L1StatsSource): () => void {
  let sources = l1Sources.get(meter);
  if (sources === undefined) {
    sources = new Set();
    observeL1s(meter, sources);
    l1Sources.set(meter, sources);
  }
  for (const _ of liveSources(sources)); // drops the L1s of caches collected unclosed
  const ref = new WeakRef(l1);
  const observed = sources;
  observed.add(ref);
  return () => void observed.delete(ref);
}
