import { rmSync } from 'node:fs';
import type { RedisServer } from '../../src/testing';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { testRedis?: RedisServer }).testRedis?.stop();
  if (process.env.MDC_TEST_CA_DIR) rmSync(process.env.MDC_TEST_CA_DIR, { recursive: true, force: true });
}
