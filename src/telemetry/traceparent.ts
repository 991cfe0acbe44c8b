/**
 * W3C `traceparent` (version 00) text of a span context, and its strict reading (../internal/trace-links):
 * what a flight's holder or a code's redeemer records in its outcome so that the waiters' spans can
 * link to its token request. Anything but the exact shape, or an all-zero id, is no link.
 */
import type { SpanContext } from '@opentelemetry/api';
import { TRACEPARENT } from '../internal/trace-links';

export function traceparentOf(context: SpanContext): string | undefined {
  const text = `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  return parseTraceparent(text) === undefined ? undefined : text;
}

/** The span context of a traceparent (remote), or `undefined` unless it has the exact shape and non-zero ids. */
export function parseTraceparent(text: unknown): SpanContext | undefined {
  if (typeof text !== 'string') return undefined;
  const match = TRACEPARENT.exec(text);
  if (!match) return undefined;
  return { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16), isRemote: true };
}
