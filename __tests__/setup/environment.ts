// Jest's node environment, plus trust in the run's test CA for the global fetch that MSAL uses.
// The dispatcher must be set here, in the worker's own realm: a test file's sandbox has its own
// globalThis, which Node's built-in fetch never reads. (Child processes get NODE_EXTRA_CA_CERTS.)
// For the same reason, the sandbox's OpenTelemetry registry is the worker's: the library loads
// @opentelemetry/api with Node's own require (src/telemetry/otel-api.ts), a copy that registers
// its providers on the worker's globalThis, while a test's copy (through jest) uses the sandbox's.
// Every copy of the API finds the registry under one global symbol, as in a process without jest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { TestEnvironment } from 'jest-environment-node';
import { Agent, setGlobalDispatcher } from 'undici';

export default class TestCaEnvironment extends TestEnvironment {
  override async setup(): Promise<void> {
    await super.setup();
    const registry = Symbol.for('opentelemetry.js.api.1');
    const worker = globalThis as unknown as Record<symbol, unknown>;
    Object.defineProperty(this.global, registry, {
      configurable: true,
      get: () => worker[registry],
      set: (value: unknown) => void (worker[registry] = value),
    });
    const caDirectory = process.env.MDC_TEST_CA_DIR;
    if (caDirectory) {
      setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, readFileSync(join(caDirectory, 'ca.pem'), 'utf8')] } }));
    }
  }
}
