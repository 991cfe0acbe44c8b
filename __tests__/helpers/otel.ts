// The real OpenTelemetry SDK in this process, for telemetry tests: a MeterProvider with a reader
// that collects on demand, a BasicTracerProvider exporting to memory, and the AsyncLocalStorage
// context manager (registered globally: the library's spans nest through the API's context).
import { context, metrics, trace } from '@opentelemetry/api';
import type { Attributes, HrTime } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** A reader that collects when asked (cumulative). */
class CollectingReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** One point of a metric: its attributes and its value (a count, or a histogram's count and sum). */
export interface Point {
  attributes: Attributes;
  value: number;
  /** Histograms: the sum of what was recorded. */
  sum?: number;
}

export class OtelHarness {
  readonly reader = new CollectingReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  readonly exporter = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.exporter)] });
  readonly #contextManager = new AsyncLocalStorageContextManager().enable();

  constructor() {
    context.setGlobalContextManager(this.#contextManager);
  }

  /** The option that hands these providers to the library. */
  get telemetry(): { meterProvider: MeterProvider; tracerProvider: BasicTracerProvider } {
    return { meterProvider: this.meterProvider, tracerProvider: this.tracerProvider };
  }

  /** Makes these providers the global ones (undone by {@link close}). */
  registerGlobally(): void {
    metrics.setGlobalMeterProvider(this.meterProvider);
    trace.setGlobalTracerProvider(this.tracerProvider);
  }

  async collect(): Promise<ResourceMetrics> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw new Error(`collecting metrics failed: ${errors.map(String).join('; ')}`);
    return resourceMetrics;
  }

  /** Every point of the metric `name` (none when it was never recorded). */
  async points(name: string): Promise<Point[]> {
    const collected = await this.collect();
    return pointsIn(collected, name);
  }

  spans(): ReadableSpan[] {
    return this.exporter.getFinishedSpans();
  }

  async close(): Promise<void> {
    await this.meterProvider.shutdown();
    await this.tracerProvider.shutdown();
    context.disable();
    metrics.disable();
    trace.disable();
  }
}

export function pointsIn(collected: ResourceMetrics, name: string): Point[] {
  const points: Point[] = [];
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        if (metric.dataPointType === DataPointType.HISTOGRAM) {
          const histogram = point.value as { count: number; sum?: number };
          points.push({ attributes: point.attributes, value: histogram.count, sum: histogram.sum ?? 0 });
        } else {
          points.push({ attributes: point.attributes, value: point.value as number });
        }
      }
    }
  }
  return points;
}

/** The sum of the values of the points whose attributes include `attributes`. */
export function total(points: Point[], attributes: Attributes = {}): number {
  return points
    .filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))
    .reduce((sum, point) => sum + point.value, 0);
}

/** Milliseconds of an HrTime. */
export const ms = (time: HrTime): number => time[0] * 1000 + time[1] / 1e6;
