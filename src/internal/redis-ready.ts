// Waiting for a node-redis client to be (re)connected, within a deadline, instead of sending a
// command it would queue (and replay after an outage) or refuse at once (offline queue disabled).
import { withDeadline } from './deadline';

export interface ReadyAwareClient {
  /** node-redis: connected and not reconnecting. */
  isReady?: boolean;
  once?(event: string, listener: () => void): unknown;
  off?(event: string, listener: () => void): unknown;
}

/** Resolves once `client` is ready; rejects with StoreUnavailableError after `timeoutMs`. */
export async function untilReady(client: ReadyAwareClient, timeoutMs: number, operation: string, budgetMs = timeoutMs): Promise<void> {
  if (client.isReady !== false) return;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    client.once?.('ready', onReady);
  });
  try {
    await withDeadline(ready, Math.max(1, timeoutMs), operation, budgetMs);
  } finally {
    client.off?.('ready', onReady);
  }
}
