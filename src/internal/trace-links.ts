/**
 * Links between the span of a token request and the spans of the callers that waited for it, in
 * this process or another: the holder of a flight, or the redeemer of a code, records the W3C
 * `traceparent` of its token request in its (MACed) outcome, and each waiter links its operation's
 * span to it. What redeem-once and flights need of telemetry to do so, and the strict shape of a
 * traceparent read back from a store (authenticated, and untrusted all the same).
 */

/** Telemetry's side of the links (src/telemetry implements it; none when telemetry is off). */
export interface TraceLinks {
  /** Runs `send`; `traceparent()` then names the token request it made, when that was traced. */
  watchTokenRequest<T>(send: () => Promise<T>): { promise: Promise<T>; traceparent: () => string | undefined };
  /** Links the caller's active span (its operation) to the token request named by `traceparent`. */
  linkTo(traceparent: string): void;
}

/** A W3C traceparent (version 00), exactly: lower-case hex, ids not all zero. */
export const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;

/** `{ trace }` when `value` is a traceparent, else nothing: what an outcome read back may carry. */
export function traceOf(value: unknown): { trace?: string } {
  return typeof value === 'string' && TRACEPARENT.test(value) ? { trace: value } : {};
}
