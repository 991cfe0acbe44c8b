// Where a fleet single flight waiter's time goes, from the timelines the flight workers record
// (bench/workers/flight-worker.ts): the holder records its outcome (`complete`, which publishes
// the change); each waiting instance wakes (a pub/sub message, or the end of a poll interval),
// claims the round again (and finds it done), reads the partition again, answers from it with a
// cache-only MSAL call (flight:waited), and hands the answer to its joined callers.
import { percentile } from './stats';

interface Span {
  start: number;
  end: number;
}

/** What one process recorded during a storm. */
export interface FlightTimeline {
  claims: (Span & { state: string })[];
  waits: (Span & { timeoutMs: number })[];
  completes: Span[];
  reads: { at: number; level: string }[];
  heldAt: number[];
  waitedAt: number[];
}

/** One waiting instance in one storm, in ms. */
export interface WaiterProfile {
  /** How its last wait ended: a message on the lock channel, its poll interval, or no wait at all. */
  wake: 'message' | 'poll' | 'none';
  /** Waits that ended at their timeout (polls) before the round was done. */
  polls: number;
  /** Its claims of the round, the one that found it done included. */
  claims: number;
  /**
   * The end of its last claim that found the round busy, from the holder starting `complete`:
   * around 0 or later, the holder's change was published about when this instance began to wait
   * (a wake-up that can be missed, leaving the waiter to its poll interval).
   */
  lastBusyMs: number;
  /** From the holder starting `complete` to the end of this instance's last wait. */
  wakeMs: number;
  /** From the wake to the start of the claim that found the round done (event-loop delay). */
  toClaimMs: number;
  /** That claim's round trip. */
  claimMs: number;
  /** The partition read after it (from the claim's end). */
  readMs: number;
  readLevel: string;
  /** The cache-only MSAL call that answered from the read (to flight:waited). */
  answerMs: number;
  /** From flight:waited to the last of its joined calls resolved. */
  resolveMs: number;
  /** Its last call's end minus the holder call's end. */
  addedMs: number;
}

/** The holder's side, in ms. */
export interface HolderProfile {
  /** `complete`'s round trip (the outcome recorded and published). */
  completeMs: number;
  /** From `complete`'s end to the holder call's end. */
  tailMs: number;
}

/**
 * The profile of one storm with exactly one holder, or `undefined`.
 *
 * @param timelines - per process
 * @param ends - each process's call ends (wall clock)
 */
export function profileStorm(
  timelines: FlightTimeline[],
  ends: number[][],
): { holder: HolderProfile; waiters: WaiterProfile[] } | undefined {
  const holders = timelines.flatMap((timeline, index) => (timeline.heldAt.length > 0 ? [index] : []));
  if (holders.length !== 1) return undefined;
  const holderIndex = holders[0]!;
  const completion = timelines[holderIndex]!.completes[0];
  if (!completion) return undefined;
  const holderEnd = Math.min(...ends[holderIndex]!);
  const waiters: WaiterProfile[] = [];
  timelines.forEach((timeline, index) => {
    if (index === holderIndex || timeline.waitedAt.length === 0) return;
    const done = timeline.claims.filter((claim) => claim.state === 'done').at(-1);
    if (!done) return;
    const lastBusy = timeline.claims.filter((claim) => claim.state === 'busy' && claim.end <= done.start).at(-1);
    const lastWait = timeline.waits.filter((wait) => wait.end <= done.start).at(-1);
    const byTimeout = (wait: { start: number; end: number; timeoutMs: number }): boolean => wait.end - wait.start >= wait.timeoutMs - 1;
    const read = timeline.reads.find((entry) => entry.at >= done.end);
    const waitedAt = timeline.waitedAt[0]!;
    const readAt = read?.at ?? NaN;
    waiters.push({
      wake: lastWait === undefined ? 'none' : byTimeout(lastWait) ? 'poll' : 'message',
      polls: timeline.waits.filter(byTimeout).length,
      claims: timeline.claims.length,
      lastBusyMs: lastBusy ? lastBusy.end - completion.start : NaN,
      wakeMs: lastWait ? lastWait.end - completion.start : NaN,
      toClaimMs: lastWait ? done.start - lastWait.end : NaN,
      claimMs: done.end - done.start,
      readMs: readAt - done.end,
      readLevel: read?.level ?? 'none',
      answerMs: waitedAt - readAt,
      resolveMs: Math.max(...ends[index]!) - waitedAt,
      addedMs: Math.max(...ends[index]!) - holderEnd,
    });
  });
  return { holder: { completeMs: completion.end - completion.start, tailMs: holderEnd - completion.end }, waiters };
}

/** p50 / p99 / max of one field over the waiters (or holders) of all storms. */
export function segment(values: number[]): { p50: number; p99: number; max: number; count: number } {
  const known = values.filter((value) => Number.isFinite(value));
  return { p50: percentile(known, 50), p99: percentile(known, 99), max: known.length ? Math.max(...known) : NaN, count: known.length };
}
