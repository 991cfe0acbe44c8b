/**
 * The app's node-redis client as tracking sees it (standalone, Cluster, or one that cannot track:
 * Sentinel, anything else), and the tracking connections made from it: a duplicate of the client
 * (standalone), or of each master's node client (Cluster, so with the cluster's node options).
 */
import { withDeadline } from '../../internal/deadline';
import type { TrackingClient, TrackingConnection } from './tracking-connection';

/** The `CLIENT SETNAME` of every tracking connection (find it in `CLIENT LIST`). */
export const TRACKING_CONNECTION_NAME = 'msal-dc-l1';

/** A node-redis v5 standalone client, as far as duplicating it goes. */
export interface StandaloneClient {
  isOpen?: boolean;
  options?: { socket?: object };
  duplicate(overrides: object): TrackingClient;
  once?(event: string, listener: () => void): unknown;
  off?(event: string, listener: () => void): unknown;
}

export interface MasterNode {
  address: string;
  client?: StandaloneClient;
}

/** A node-redis v5 cluster client, as far as tracking its masters goes. */
export interface ClusterClient {
  isOpen: boolean;
  slots: unknown;
  masters: MasterNode[];
  nodeClient(node: MasterNode): Promise<StandaloneClient>;
  on(event: string, listener: () => void): unknown;
  once(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

export type AppClient = { kind: 'standalone'; client: StandaloneClient } | { kind: 'cluster'; client: ClusterClient };

export function appClientOf(client: unknown): AppClient | undefined {
  const candidate = client as Partial<ClusterClient & StandaloneClient & { getSentinelNode: unknown }> | undefined;
  if (!candidate || candidate.getSentinelNode !== undefined) return undefined;
  if (candidate.slots !== undefined && Array.isArray(candidate.masters)) return { kind: 'cluster', client: candidate as ClusterClient };
  if (typeof candidate.duplicate === 'function') return { kind: 'standalone', client: candidate as StandaloneClient };
  return undefined;
}

/** The tracking twin of a client: RESP3 with invalidations, never reconnecting or queueing by itself. */
function trackingClientOf(client: StandaloneClient): TrackingClient {
  const tracking = client.duplicate({
    RESP: 3,
    emitInvalidate: true,
    name: TRACKING_CONNECTION_NAME,
    clientSideCache: undefined,
    disableOfflineQueue: true,
    maintNotifications: 'disabled',
    pingInterval: undefined,
    readonly: false,
    socket: { ...client.options?.socket, reconnectStrategy: false },
  });
  tracking.unref(); // a background connection never keeps the process alive
  return tracking;
}

export const addressesOf = (masters: readonly MasterNode[]): string[] => masters.map((master) => master.address).sort();

/** New tracking connections' clients (not connected): one for a standalone client, one per master of a Cluster. */
export async function trackingClientsFor(app: AppClient, timeoutMs: number): Promise<TrackingClient[]> {
  if (app.kind === 'standalone') return [trackingClientOf(app.client)];
  const cluster = app.client;
  const nodes = await Promise.all(
    cluster.masters.map((master) => master.client ?? withDeadline(cluster.nodeClient(master), timeoutMs, 'Redis Cluster node connect')),
  );
  return nodes.map(trackingClientOf);
}

/**
 * Throws unless every tracked node says it is a master and they are still the cluster client's
 * masters (`addresses`, as they were when the connections were made).
 */
export async function confirmMasters(
  cluster: ClusterClient,
  connections: readonly TrackingConnection[],
  addresses: readonly string[],
): Promise<void> {
  const roles = await Promise.all(connections.map((connection) => connection.command(['ROLE'], 'Redis ROLE')));
  if (roles.some((role) => String((role as unknown[])[0]) !== 'master')) throw new Error('a tracked node is not a master');
  if (addressesOf(cluster.masters).join() !== addresses.join()) throw new Error('the masters changed');
}
