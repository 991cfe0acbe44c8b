/**
 * Holds the first `parties` callers until all of them have arrived, then lets them through together;
 * later callers pass at once. The example tests put it in front of redemptions so that duplicates sent
 * at once are all in flight before any is redeemed (a later duplicate is tested separately).
 */
export function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const allArrived = new Promise<void>((resolve) => (release = resolve));
  return async () => {
    if (++arrived === parties) release();
    if (arrived <= parties) await allArrived;
  };
}
