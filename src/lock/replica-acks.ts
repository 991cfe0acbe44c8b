// How many replicas must acknowledge a claim before the code leaves the process. Replication is
// asynchronous: a write the primary acknowledged but never passed on is gone after a failover,
// so a claim is made durable with WAIT. 'auto' learns the replicas from the primary itself.
import { InvalidArgumentError, StoreUnavailableError } from '../errors';

/**
 * `'auto'`: as many replicas as the primary has (its `connected_slaves`, read with each durable
 * write), remembered per replication ID; a number: exactly that many; `0`: no WAIT.
 */
export type ReplicaAcks = 'auto' | number;

/** Validates the `replicaAcks` option. */
export function replicaAcksOption(value: unknown): ReplicaAcks {
  if (value === undefined) return 'auto';
  if (value === 'auto' || (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 16)) return value;
  throw new InvalidArgumentError(
    'ERR_INVALID_ARG_VALUE',
    '"options.replicaAcks" must be \'auto\', 0 (no WAIT) or the number of replicas (1 to 16) that must acknowledge a claim',
  );
}

/** The replicas a primary reported with a durable write (empty replid when not asked). */
export interface ReplicationReport {
  replid: string;
  connectedReplicas: number;
}

/**
 * For `'auto'`: the most replicas each primary (by replication ID) was seen with. A replica that
 * drops off (its link cut, the primary about to fail) is still waited for, so such a claim fails
 * instead of being acknowledged by the primary alone. A promoted replica has a new replication
 * ID, so after a failover the count starts again from what the new primary has.
 */
export class ReplicaMemory {
  private readonly seen = new Map<string, number>();

  constructor(private readonly setting: ReplicaAcks) {}

  /** Whether a durable write must ask the primary for its replicas (`'auto'`). */
  get reports(): boolean {
    return this.setting === 'auto';
  }

  /** Replicas that must acknowledge a write made under `report`. */
  required(report: ReplicationReport): number {
    if (this.setting !== 'auto') return this.setting;
    if (!report.replid) return 0;
    const most = Math.max(report.connectedReplicas, this.seen.get(report.replid) ?? 0);
    if (most > 0) this.seen.set(report.replid, most);
    if (this.seen.size > 64) this.seen.delete(this.seen.keys().next().value!); // old primaries
    return most;
  }
}

/** The typed error for a write the replicas did not acknowledge in time. */
export function notReplicatedError(operation: string, acknowledged: number, required: number, budgetMs: number): StoreUnavailableError {
  return new StoreUnavailableError(
    `Redis ${operation} was acknowledged by ${acknowledged} of ${required} replica(s) within ${budgetMs} ms, so a failover could lose it; ` +
      'nothing was sent. Check the replicas and their link to the primary, or set "replicaAcks" (see docs/redis.md)',
  );
}

/** A connection that reset or was not connected: the command may be sent again on the next one. */
export function isConnectionReset(error: unknown): boolean {
  const cause = error instanceof StoreUnavailableError && error.cause !== undefined ? error.cause : error;
  // Not `instanceof Error`: socket errors may come from another realm (a test sandbox, a worker).
  if (typeof cause !== 'object' || cause === null) return false;
  const { code, message } = cause as { code?: unknown; message?: unknown };
  return (
    ['SocketClosedUnexpectedlyError', 'ClientOfflineError'].includes(cause.constructor?.name) ||
    (typeof code === 'string' && ['ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(code)) ||
    /Socket closed unexpectedly|client is offline|ECONNRESET|EPIPE/.test(String(message))
  );
}
