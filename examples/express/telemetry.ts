/**
 * OpenTelemetry for the Express example. `main.ts` imports this module first, so that the SDK's
 * providers are the global ones before msal-distributed-cache is loaded: the library records
 * through the global providers of `@opentelemetry/api` unless it is given its own (see
 * docs/observability.md).
 *
 * - OTEL_EXPORTER_OTLP_ENDPOINT (such as http://localhost:4318, an OpenTelemetry Collector): traces
 *   and metrics over OTLP/HTTP (JSON) to `<endpoint>/v1/traces` and `<endpoint>/v1/metrics`. The
 *   exporters read the other OTEL_EXPORTER_OTLP_* variables themselves (headers, per-signal
 *   endpoints, timeout, compression).
 * - `--otel-console` (`npm run example:express -- --otel-console`) or OTEL_CONSOLE=1: spans and
 *   metrics printed to stdout. Both can be on at once.
 * - Neither, or OTEL_SDK_DISABLED=true: no SDK is registered, and every instrument call (the
 *   library's and {@link traceRequests}') is a no-op.
 * - OTEL_SERVICE_NAME (`msal-dc-example-express`), OTEL_RESOURCE_ATTRIBUTES: the resource. Every
 *   process gets its own `service.instance.id`, so the counters of several instances stay apart.
 * - OTEL_METRIC_EXPORT_INTERVAL (ms, 60000), OTEL_METRIC_EXPORT_TIMEOUT (ms, 30000): how often
 *   metrics are sent; OTEL_BSP_* tune the batch span processor.
 *
 * {@link telemetry}'s `shutdown()` sends what is left (the last spans, the metrics as they are at
 * the end); `main.ts` calls it after the server and the library are closed.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { context, metrics, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, serviceInstanceIdDetector } from '@opentelemetry/resources';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

const SERVICE_NAME = 'msal-dc-example-express';
const INSTRUMENTATION_NAME = 'msal-dc-example-express';

/** The buckets of `http.server.request.duration`, in seconds (the SDK's default buckets are made for milliseconds). */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What this module set up from the environment. */
export interface ExampleTelemetry {
  /** Where spans and metrics go: `'otlp'`, `'console'`; empty when nothing is registered. */
  readonly exporters: readonly ('otlp' | 'console')[];
  /** Flushes and stops the providers (a no-op when nothing is registered). */
  shutdown(): Promise<void>;
}

function milliseconds(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return value !== undefined && Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
}

/** Registers the SDK globally as the environment and arguments ask; see the module's comment. */
export function startTelemetry(env: NodeJS.ProcessEnv, argv: readonly string[]): ExampleTelemetry {
  const exporters: ('otlp' | 'console')[] = [];
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true') {
    if (env.OTEL_EXPORTER_OTLP_ENDPOINT) exporters.push('otlp');
    if (argv.includes('--otel-console') || env.OTEL_CONSOLE === '1') exporters.push('console');
  }
  if (exporters.length === 0) return { exporters, shutdown: async () => undefined };

  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': SERVICE_NAME }))
    .merge(detectResources({ detectors: [serviceInstanceIdDetector, envDetector] }));

  const spanProcessors: SpanProcessor[] = [];
  const metricExporters: PushMetricExporter[] = [];
  if (exporters.includes('otlp')) {
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
    metricExporters.push(new OTLPMetricExporter());
  }
  if (exporters.includes('console')) {
    spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter())); // each span printed as it ends
    metricExporters.push(new ConsoleMetricExporter());
  }

  const exportIntervalMillis = milliseconds(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000);
  const exportTimeoutMillis = Math.min(milliseconds(env.OTEL_METRIC_EXPORT_TIMEOUT, 30_000), exportIntervalMillis);
  const meterProvider = new MeterProvider({
    resource,
    readers: metricExporters.map((exporter) => new PeriodicExportingMetricReader({ exporter, exportIntervalMillis, exportTimeoutMillis })),
  });
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors });

  // The caller's active span is the parent of the library's spans: the context follows async calls.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);

  let stopped: Promise<void> | undefined;
  return {
    exporters,
    shutdown: () => (stopped ??= Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]).then(() => undefined)),
  };
}

/** Set up once, when `main.ts` imports this module (before the library). */
export const telemetry = startTelemetry(process.env, process.argv.slice(2));

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/**
 * Wraps the app's request listener: a SERVER span per request, the active span while the app
 * handles it (so the library's spans are its children), and the `http.server.request.duration`
 * histogram. Named after the route (`GET /auth/callback`) when the path is one of `routes`, else
 * after the method alone. Neither the query string (the callback's carries the code) nor any
 * header is recorded. In an app of your own, @opentelemetry/instrumentation-http and
 * -express do this, and continue a trace started by the caller.
 */
export function traceRequests(listener: RequestListener, routes: readonly string[]): RequestListener {
  const tracer = trace.getTracer(INSTRUMENTATION_NAME);
  const duration = metrics.getMeter(INSTRUMENTATION_NAME).createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP server requests',
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  return (request: IncomingMessage, response: ServerResponse) => {
    const start = performance.now();
    const method = METHODS.has(request.method ?? '') ? request.method! : '_OTHER';
    const path = (request.url ?? '/').split('?')[0]!;
    const route = routes.includes(path) ? path : undefined;
    const attributes: Attributes = { 'http.request.method': method, ...(route !== undefined && { 'http.route': route }) };
    tracer.startActiveSpan(route === undefined ? method : `${method} ${route}`, { kind: SpanKind.SERVER, attributes }, (span) => {
      response.once('close', () => {
        const status = response.statusCode;
        span.setAttribute('http.response.status_code', status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        duration.record((performance.now() - start) / 1000, { ...attributes, 'http.response.status_code': status });
      });
      listener(request, response);
    });
  };
}
