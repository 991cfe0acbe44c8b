/**
 * `@opentelemetry/api`, loaded when it can be: it is an optional peer dependency, so the library
 * must load and work without it (telemetry is then off). Loaded synchronously, once, on first
 * need, with `createRequire(__filename)` (tsup's shims define `__filename` in the ESM build):
 * bundlers and esbuild leave it alone, where a plain `require` of a missing package would fail the
 * ESM build or a user's bundle. Every copy of the API 1.x registers its global providers under one
 * global symbol, so the copy loaded here sees the SDK the app registered. (Jest runs each test
 * file in a realm of its own: its environment shares that symbol with the process, see
 * __tests__/setup/environment.ts.)
 */
import { createRequire } from 'node:module';
import type * as OtelApiModule from '@opentelemetry/api';

/** The module `@opentelemetry/api`. */
export type OtelApi = typeof OtelApiModule;

let loaded: OtelApi | null | undefined;

/** `@opentelemetry/api`, or `undefined` when it cannot be loaded (not installed). */
export function otelApi(): OtelApi | undefined {
  if (loaded === undefined) {
    try {
      const api = createRequire(__filename)('@opentelemetry/api') as OtelApi;
      loaded = typeof api?.trace?.getTracerProvider === 'function' && typeof api.metrics?.getMeterProvider === 'function' ? api : null;
    } catch {
      loaded = null;
    }
  }
  return loaded ?? undefined;
}
