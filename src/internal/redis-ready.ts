// Waiting for a node-redis client to be usable, within a deadline, instead of sending a command
// it would queue (and replay after an outage), refuse at once (offline queue disabled), or, for a
// Redis Cluster still discovering its slots, fail with a TypeError.
import { withDeadline } from './deadline';

export interface ReadyAwareClient {
  /** node-redis: connected and not reconnecting (a cluster client has none). */
  isReady?: boolean;
  /** node-redis: `connect()` was called and the client was not closed. */
  isOpen?: boolean;
  /** node-redis cluster: the masters, empty until slot discovery has finished. */
  masters?: readonly unknown[];
  /** Listens once to `'ready'` or `'connect'`, to wait for a client that is not usable yet. */
  once?(event: string, listener: () => void): unknown;
  /** Stops listening (after the wait ended). */
  off?(event: string, listener: () => void): unknown;
}

/**
 * The event that makes `client` usable, if it is not yet: 'ready' for a (re)connecting client;
 * 'connect' for a cluster whose connect() has started (KeyvRedis hands one out as soon as another
 * call started it) but whose slots are not known yet. A standalone client has no `masters`.
 */
function pendingEvent(client: ReadyAwareClient): 'ready' | 'connect' | undefined {
  if (client.isReady === false) return 'ready';
  if (Array.isArray(client.masters) && client.masters.length === 0 && client.isOpen === true) return 'connect';
  return undefined;
}

/** Resolves once `client` is usable; rejects with StoreUnavailableError after `timeoutMs`. */
export async function untilReady(client: ReadyAwareClient, timeoutMs: number, operation: string, budgetMs = timeoutMs): Promise<void> {
  const event = pendingEvent(client);
  if (event === undefined) return;
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    client.once?.(event, onReady);
  });
  try {
    await withDeadline(ready, Math.max(1, timeoutMs), operation, budgetMs);
  } finally {
    client.off?.(event, onReady);
  }
}
