/**
 * Telemetry: one per DistributedTokenCache and per DistributedClientApplication that has it on
 * (see ./options), over the meter and tracer of the providers it was given. What it records is fed
 * from the library's own events where they say it all (`cache:*`, `store:error`, `redeem:*`,
 * `flight:*`, through {@link Telemetry.tap}, before the listeners), and otherwise from wrappers
 * around the calls it times: the public operations, partition reads and writes, the lock-store
 * calls of redeem-once and flights (./traced-lock-store), and the token requests (./token-requests).
 *
 * The hot path (a silent call answered from L1) costs the API's calls and nothing else: attribute
 * sets are made once (./names), spans get their attributes only when they record, and no string,
 * hash or JSON is made for telemetry. Recording never throws into an operation.
 */
import type { Context, Link, Meter, Span, SpanOptions, Tracer } from '@opentelemetry/api';
import type { EventSink, StoreErrorEvent } from '../events';
import { instrumentsOf } from './instruments';
import type { Instruments } from './instruments';
import {
  ATTR,
  CACHE_LOOKUP,
  CACHE_READ,
  CACHE_WRITE,
  FLIGHT,
  INVALIDATION,
  LIBRARY_NAME,
  LIBRARY_VERSION,
  REDEMPTION,
  REFUSED,
  SPAN,
  errorTypeOf,
  storeErrorAttrs,
} from './names';
import type { Attrs, CacheLevel, OperationVocabulary } from './names';
import { observeL1 } from './l1-figures';
import type { L1StatsSource } from './l1-figures';
import type { OtelApi } from './otel-api';
import { parseTraceparent, traceparentOf } from './traceparent';

/** What a partition read tells its span: where it was answered (set by the reader). */
export interface CacheReadProbe {
  level: CacheLevel | undefined;
}

/** Set in the context of a flight holder's request: the token request reports its span there. */
interface TokenRequestWatch {
  traceparent: string | undefined;
}

/** At most this many error types per operation are told apart; any other is `_OTHER`. */
const MAX_ERROR_TYPES = 100;

/** Seconds since `started` (a `performance.now()`). */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}

export class Telemetry {
  readonly api: OtelApi;
  readonly tracer: Tracer;
  readonly instruments: Instruments;
  readonly #meter: Meter;
  readonly internalSpan: SpanOptions;
  readonly clientSpan: SpanOptions;
  readonly #watchKey: symbol;
  /** Metrics go somewhere: a provider was given, or the global one was not the API's no-op when this was made. */
  readonly #metricsLive: boolean;
  /** The global tracer provider, whose delegate tells whether an SDK is registered now (`undefined`: one was given). */
  readonly #globalTracing: { getDelegate?(): object } | undefined;

  /**
   * @param meterProvider - `MeterProvider` of the API (the app's, or the global one)
   * @param tracerProvider - `TracerProvider` of the API (the app's, or the global one)
   */
  constructor(
    api: OtelApi,
    meterProvider: { getMeter(name: string, version?: string): unknown },
    tracerProvider: { getTracer(name: string, version?: string): unknown },
  ) {
    this.api = api;
    this.#meter = meterProvider.getMeter(LIBRARY_NAME, LIBRARY_VERSION) as Meter;
    this.tracer = tracerProvider.getTracer(LIBRARY_NAME, LIBRARY_VERSION) as Tracer;
    this.instruments = instrumentsOf(this.#meter);
    this.internalSpan = Object.freeze({ kind: api.SpanKind.INTERNAL });
    this.clientSpan = Object.freeze({ kind: api.SpanKind.CLIENT });
    this.#watchKey = api.createContextKey('msal_dc token request watch');
    this.#metricsLive = !isNoop(meterProvider);
    this.#globalTracing = tracerProvider === api.trace.getTracerProvider() ? (tracerProvider as { getDelegate?(): object }) : undefined;
  }

  /**
   * Whether anything records: metrics that go somewhere, or spans of a tracer that is not the
   * API's no-op. When nothing does (the API installed, no SDK), the wrappers below call straight
   * through: a few property reads per call, not a span, two clock reads and a promise callback.
   * Checked per call for traces, so an SDK registered later is used from then on.
   */
  get live(): boolean {
    if (this.#metricsLive) return true;
    const tracing = this.#globalTracing;
    return tracing === undefined || !isNoop(tracing.getDelegate?.() ?? tracing);
  }

  /**
   * Runs a public operation as the active span `msal_dc <operation>` (a child of the caller's
   * active context), and records its duration by outcome, token source and error type.
   */
  operation<T>(op: OperationVocabulary, work: () => Promise<T>): Promise<T> {
    if (!this.live) return work();
    const span = this.tracer.startSpan(op.spanName, this.internalSpan);
    const started = performance.now();
    let running: Promise<T>;
    try {
      // A span that records is the active one while the operation runs, so its children nest under
      // it. One that does not (no SDK, or sampled out) is not made active: a context per call for
      // nothing (its children then see the caller's context, whose sampling decided this span's).
      const { context, trace } = this.api;
      running = span.isRecording() ? context.with(trace.setSpan(context.active(), span), work) : work();
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      (result) => {
        this.#succeeded(op, span, started, result);
        return result;
      },
      (error: unknown) => {
        this.#failed(op, span, started, error);
        throw error;
      },
    );
  }

  #succeeded(op: OperationVocabulary, span: Span, started: number, result: unknown): void {
    try {
      const fromCache = typeof result === 'object' && result !== null ? (result as { fromCache?: unknown }).fromCache : undefined;
      const attrs = fromCache === true ? op.fromCache : fromCache === false ? op.fromIdentityProvider : op.success;
      this.instruments.operationDuration.record(secondsSince(started), attrs);
      if (span.isRecording() && attrs !== op.success) span.setAttribute(ATTR.tokenSource, attrs[ATTR.tokenSource]!);
      span.end();
    } catch {
      // telemetry never breaks an operation
    }
  }

  #failed(op: OperationVocabulary, span: Span, started: number, error: unknown): void {
    try {
      let type = errorTypeOf(error);
      // Error types are a finite set (codes and class names); should a server invent codes, they stop here.
      if (!op.failures.has(type) && op.failures.size >= MAX_ERROR_TYPES) type = '_OTHER';
      let attrs = op.failures.get(type);
      if (attrs === undefined) {
        attrs = Object.freeze({ [ATTR.operation]: op.name, [ATTR.outcome]: 'failure', [ATTR.errorType]: type });
        op.failures.set(type, attrs);
      }
      this.instruments.operationDuration.record(secondsSince(started), attrs);
      if (type === 'ERR_LOCK_TIMEOUT') this.instruments.lockTimeouts.add(1, op.lockTimeout);
      this.failSpan(span, error, type);
      span.end();
    } catch {
      // telemetry never breaks an operation
    }
  }

  /**
   * Marks a span failed: `error.type`, and the exception with its name, type and message only
   * (the library's messages and MSAL's carry no secret; the request is never recorded).
   */
  failSpan(span: Span, error: unknown, type: string = errorTypeOf(error)): void {
    if (!span.isRecording()) return;
    span.setAttribute(ATTR.errorType, type);
    const message = error instanceof Error ? error.message.slice(0, 500) : '';
    span.recordException({ name: error instanceof Error ? error.name : type, code: type, message });
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: type });
  }

  /** Sets an attribute on the active span (the caller's operation), when it records. */
  annotate(key: string, value: string): void {
    const span = this.api.trace.getActiveSpan();
    if (span?.isRecording()) span.setAttribute(key, value);
  }

  /** Times one partition read as a `msal_dc cache.read` span; `read` sets the probe's level. */
  cacheRead<T>(partitionHash: string, read: (probe: CacheReadProbe) => Promise<T>): Promise<T> {
    if (!this.live) return read({ level: undefined });
    const span = this.tracer.startSpan(SPAN.cacheRead, this.internalSpan);
    const started = performance.now();
    const probe: CacheReadProbe = { level: undefined };
    return read(probe).then(
      (snapshot) => {
        this.#ended(span, started, probe.level === undefined ? CACHE_READ.failed : CACHE_READ[probe.level], partitionHash, probe.level);
        return snapshot;
      },
      (error: unknown) => {
        this.#ended(span, started, CACHE_READ.failed, partitionHash, undefined, error);
        throw error;
      },
    );
  }

  /** Times one partition write (its compare-and-set rounds, merges and backoffs) as a `msal_dc cache.write` span. */
  cacheWrite<T>(partitionHash: string, write: () => Promise<T>): Promise<T> {
    if (!this.live) return write();
    const span = this.tracer.startSpan(SPAN.cacheWrite, this.internalSpan);
    const started = performance.now();
    return write().then(
      (written) => {
        this.#ended(span, started, CACHE_WRITE, partitionHash, undefined);
        return written;
      },
      (error: unknown) => {
        this.#ended(span, started, CACHE_WRITE, partitionHash, undefined, error);
        throw error;
      },
    );
  }

  #ended(span: Span, started: number, attrs: Attrs, partitionHash: string, level: CacheLevel | undefined, error?: unknown): void {
    try {
      this.instruments.cacheDuration.record(secondsSince(started), attrs);
      if (span.isRecording()) {
        span.setAttribute(ATTR.partitionHash, partitionHash);
        if (level !== undefined) span.setAttribute(ATTR.cacheLevel, level);
        if (error !== undefined) this.failSpan(span, error);
      }
      span.end();
    } catch {
      // telemetry never breaks an operation
    }
  }

  /** A sink that records what the event says, then passes it on to `sink` (the emitter's listeners). */
  tap<Events extends Record<keyof Events, unknown[]>>(sink: EventSink<Events>): EventSink<Events> {
    return (name, ...payload) => {
      try {
        this.#record(name, payload[0]);
      } catch {
        // telemetry never breaks an operation
      }
      sink(name, ...payload);
    };
  }

  #record(name: string, payload: unknown): void {
    const { instruments } = this;
    const event = payload as Record<string, string>;
    switch (name) {
      case 'cache:hit':
        return instruments.cacheLookups.add(1, CACHE_LOOKUP[event.level as 'l1' | 'store']);
      case 'cache:miss':
        return instruments.cacheLookups.add(1, CACHE_LOOKUP.miss);
      case 'cache:invalidate':
        return instruments.l1Invalidations.add(1, INVALIDATION[event.reason!]);
      case 'store:error':
        return instruments.storeErrors.add(1, storeErrorAttrs(payload as StoreErrorEvent));
      case 'redeem:refused':
        return instruments.redemptions.add(1, REFUSED[event.reason!]);
      case 'flight:waited': {
        const waitedMs = (payload as { waitedMs: number }).waitedMs;
        instruments.flightWaitDuration.record(waitedMs / 1000, FLIGHT[event.grant!]?.[`wait:${event.outcome}`]);
        return instruments.flights.add(1, FLIGHT[event.grant!]?.[`flight:waited:${event.outcome}`]);
      }
    }
    if (name.startsWith('flight:')) instruments.flights.add(1, FLIGHT[event.grant!]?.[name]);
    else if (REDEMPTION[name] !== undefined) instruments.redemptions.add(1, REDEMPTION[name]);
  }

  /**
   * Reports an L1's entries, bytes and evictions at each collection, until the returned function
   * is called (the cache's close). The L1s of every cache recording with one meter are summed.
   */
  observeL1(l1: L1StatsSource): () => void {
    return observeL1(this.#meter, l1);
  }

  /**
   * Runs a flight holder's `send`, and gives the W3C traceparent of the token request it made (the
   * last one, when traced): the waiters' operation spans link to it.
   */
  watchTokenRequest<T>(send: () => Promise<T>): { promise: Promise<T>; traceparent: () => string | undefined } {
    const watch: TokenRequestWatch = { traceparent: undefined };
    const { context } = this.api;
    const promise = context.with(context.active().setValue(this.#watchKey, watch), send);
    return { promise, traceparent: () => watch.traceparent };
  }

  /** Called by a token request's span: tells a flight holder's watch (if any) where its request is. */
  reportTokenRequest(active: Context, span: Span): void {
    const watch = active.getValue(this.#watchKey) as TokenRequestWatch | undefined;
    if (watch !== undefined && span.isRecording()) watch.traceparent = traceparentOf(span.spanContext());
  }

  /** Links the active span (the caller's operation) to another caller's token request, named by its traceparent. */
  linkTo(traceparent: string): void {
    const context = parseTraceparent(traceparent);
    const span = this.api.trace.getActiveSpan();
    if (context === undefined || span === undefined || !span.isRecording() || typeof span.addLink !== 'function') return;
    const link: Link = { context };
    span.addLink(link);
  }
}

/** Whether a provider is the API's no-op (what the API hands out while no SDK is registered). */
function isNoop(provider: object): boolean {
  const name = provider.constructor?.name;
  return name === 'NoopMeterProvider' || name === 'NoopTracerProvider';
}
