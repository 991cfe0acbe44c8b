/**
 * The `telemetry` option of DistributedTokenCache and DistributedClientApplication, and its
 * validation: off (`false`), the given providers, or by default the global ones of
 * `@opentelemetry/api` when it can be loaded (see ./otel-api), else off.
 */
import { InvalidArgumentError } from '../errors';
import { requireObject, typeName } from '../internal/validate';
import { otelApi } from './otel-api';
import { Telemetry } from './telemetry';

/**
 * Where the library records its metrics and traces (see docs/observability.md). Each provider
 * is one of `@opentelemetry/api` 1.x, such as the SDK's; typed by the one method the library
 * calls, so that the package's types need `@opentelemetry/api` only where it is installed.
 *
 * @example
 * ```ts
 * import { MeterProvider, PeriodicExportingMetricReader, ConsoleMetricExporter } from '@opentelemetry/sdk-metrics';
 *
 * const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter() })] });
 * const cache = new DistributedTokenCache({ telemetry: { meterProvider } }); // traces: the global TracerProvider
 * ```
 */
export interface TelemetryOptions {
  /**
   * The `MeterProvider` the metrics are recorded with (meter `msal-distributed-cache`).
   * @defaultValue the global one of `@opentelemetry/api`, as registered when the cache or
   *   application is created (register the SDK first)
   */
  meterProvider?: {
    /** `MeterProvider.getMeter` of `@opentelemetry/api`. */
    getMeter(name: string, version?: string): unknown;
  };
  /**
   * The `TracerProvider` the spans are recorded with (tracer `msal-distributed-cache`).
   * @defaultValue the global one of `@opentelemetry/api` (an SDK registered later is used from then on)
   */
  tracerProvider?: {
    /** `TracerProvider.getTracer` of `@opentelemetry/api`. */
    getTracer(name: string, version?: string): unknown;
  };
}

/**
 * The telemetry of an option: `undefined` when it is `false`, or when it is not set and
 * `@opentelemetry/api` cannot be loaded.
 *
 * @throws InvalidArgumentError for anything but `undefined`, `false` or {@link TelemetryOptions},
 *   and for providers given without `@opentelemetry/api` installed
 */
export function telemetryFrom(value: unknown, name: string): Telemetry | undefined {
  if (value === false) return undefined;
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value)))
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      `"${name}" must be false or an object { meterProvider?, tracerProvider? }, got ${typeName(value)}`,
    );
  const options = value === undefined ? {} : (requireObject(value, name) as TelemetryOptions);
  for (const key of Object.keys(options)) {
    if (key !== 'meterProvider' && key !== 'tracerProvider')
      throw new InvalidArgumentError(
        'ERR_INVALID_ARG_VALUE',
        `"${name}" has an unknown option "${key}"; use meterProvider or tracerProvider`,
      );
  }
  const { meterProvider, tracerProvider } = options;
  requireProvider(meterProvider, `${name}.meterProvider`, 'getMeter');
  requireProvider(tracerProvider, `${name}.tracerProvider`, 'getTracer');
  const api = otelApi();
  if (!api) {
    if (meterProvider === undefined && tracerProvider === undefined) return undefined;
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"${name}" names providers, but @opentelemetry/api cannot be loaded from msal-distributed-cache: install it (npm install @opentelemetry/api) next to the library`,
    );
  }
  return new Telemetry(api, meterProvider ?? api.metrics.getMeterProvider(), tracerProvider ?? api.trace.getTracerProvider());
}

function requireProvider(value: unknown, name: string, method: string): void {
  if (value === undefined) return;
  if (typeof (value as Record<string, unknown> | null)?.[method] !== 'function')
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_TYPE',
      `"${name}" must be a provider of @opentelemetry/api (with ${method}()), got ${typeName(value)}`,
    );
}
