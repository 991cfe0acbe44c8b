// Waiting for a node-redis client to be usable, within a deadline, instead of sending a command
// it would queue (and replay after an outage), refuse at once (offline queue disabled), or, for a
// Redis Cluster still discovering its slots, fail with a TypeError. Shared by the Redis lock store
// and the Redis partition store.
import { remainingMs, withDeadline } from './deadline';

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

/**
 * One pending wait per client and event, shared by every caller: a burst of calls while a client
 * reconnects adds one listener, not one each (which made Node warn of a listener leak at 11).
 */
const pending = new WeakMap<ReadyAwareClient, Map<string, Promise<void>>>();

function sharedWait(client: ReadyAwareClient, event: 'ready' | 'connect'): Promise<void> {
  let waits = pending.get(client);
  if (!waits) {
    waits = new Map();
    pending.set(client, waits);
  }
  let wait = waits.get(event);
  if (!wait) {
    const forClient = waits;
    wait = new Promise<void>((resolve) => {
      client.once?.(event, () => {
        forClient.delete(event);
        resolve();
      });
    });
    forClient.set(event, wait);
  }
  return wait;
}

/** Resolves once `client` is usable; rejects with StoreUnavailableError after `timeoutMs`. */
export async function untilReady(client: ReadyAwareClient, timeoutMs: number, operation: string, budgetMs = timeoutMs): Promise<void> {
  const event = pendingEvent(client);
  if (event === undefined) return;
  // A caller that gives up leaves the shared listener to the others (or to the next burst).
  await withDeadline(sharedWait(client, event), Math.max(1, timeoutMs), operation, budgetMs);
}

/**
 * The client `opening` resolves to, once usable: getting it (a connect under way) and waiting for
 * it to be ready share one deadline, `deadlineAt`, and fail with StoreUnavailableError naming
 * `budgetMs` (the whole deadline) when it passes.
 */
export async function readyWithin<C extends ReadyAwareClient>(opening: Promise<C>, deadlineAt: number, budgetMs: number): Promise<C> {
  const client = await withDeadline(opening, remainingMs(deadlineAt), 'Redis connect', budgetMs);
  await untilReady(client, deadlineAt - Date.now(), 'Redis connect', budgetMs);
  return client;
}
