// How many replicas must acknowledge a claim before the code leaves the process, and the WAITs
// that ask them. Replication is asynchronous: a write the primary acknowledged but never passed
// on is gone after a failover, so a claim is made durable with WAIT. 'auto' learns the replicas
// from the primary itself.
import { InvalidArgumentError, StoreUnavailableError } from '../../errors';
import type { RedisLockClient } from './connection';

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
  readonly #seen = new Map<string, number>();
  readonly #setting: ReplicaAcks;

  constructor(setting: ReplicaAcks) {
    this.#setting = setting;
  }

  /** Whether a durable write must ask the primary for its replicas (`'auto'`). */
  get reports(): boolean {
    return this.#setting === 'auto';
  }

  /** Replicas that must acknowledge a write made under `report`. */
  required(report: ReplicationReport): number {
    if (this.#setting !== 'auto') return this.#setting;
    if (!report.replid) return 0;
    const most = Math.max(report.connectedReplicas, this.#seen.get(report.replid) ?? 0);
    if (most > 0) this.#seen.set(report.replid, most);
    if (this.#seen.size > 64) this.#seen.delete(this.#seen.keys().next().value!); // old primaries
    return most;
  }
}

/** A record that must survive a failover before the call succeeds. */
export interface DurableRecord {
  /** Its key (the WAIT goes to the shard that has it). */
  key: string;
  /** Its expiry, set again by the rewrite that makes WAIT cover it. */
  ttlMs: number;
  /** The primary's replicas, as the script saw them. */
  report: ReplicationReport;
  /** Takes it back when the replicas did not acknowledge it. */
  withdraw?(client: RedisLockClient): Promise<unknown>;
}

/** A durable write waiting for the replicas. */
interface BatchedWrite {
  client: RedisLockClient;
  record: DurableRecord;
  required: number;
  deadlineAt: number;
  resolve(acknowledged: number): void;
  reject(error: unknown): void;
}

/** Waits for the replicas to acknowledge durable writes: one WAIT at a time, for every write made meanwhile. */
export class DurableWrites {
  readonly #replicas: ReplicaMemory;
  readonly #budgetMs: number;
  /** Durable writes waiting for the next WAIT, while one is in flight. */
  readonly #nextBatch: BatchedWrite[] = [];
  #waitInFlight = false;

  /** @param budgetMs - the calls' `commandTimeoutMs`, named in the error */
  constructor(setting: ReplicaAcks, budgetMs: number) {
    this.#replicas = new ReplicaMemory(setting);
    this.#budgetMs = budgetMs;
  }

  /** The last argument of the durable scripts: whether they report the primary's replicas. */
  get reportFlag(): string {
    return this.#replicas.reports ? '1' : '0';
  }

  /**
   * Waits for the replicas to acknowledge `record` within the call's deadline.
   *
   * @throws StoreUnavailableError when fewer than required acknowledge it in time (it is withdrawn)
   */
  async replicated(client: RedisLockClient, record: DurableRecord, operation: string, deadlineAt: number): Promise<void> {
    const required = this.#replicas.required(record.report);
    if (required === 0 || !client.sendCommand) return;
    const replicas = await new Promise<number>((resolve, reject) => {
      this.#nextBatch.push({ client, record, required, deadlineAt, resolve, reject });
      if (!this.#waitInFlight) void this.#sendBatch(false);
    });
    if (replicas >= required && Date.now() < deadlineAt) return;
    // Not durable (or too late for the caller): withdraw the claim (best effort) so that it does
    // not hold the code until its lease expires and then look abandoned.
    record.withdraw?.(client).catch(() => undefined);
    throw notReplicatedError(operation, replicas, required, this.#budgetMs);
  }

  /**
   * One WAIT at a time, for every durable write made meanwhile: a WAIT blocks its connection
   * until it returns, so WAITs sent one per call would block it in turn, each for its whole
   * timeout, while the replicas lag. The writes that queued behind a WAIT the replicas did not
   * answer in time fail at once.
   */
  async #sendBatch(afterMiss: boolean): Promise<void> {
    const batch = this.#nextBatch.splice(0);
    if (batch.length === 0) {
      this.#waitInFlight = false;
      return;
    }
    this.#waitInFlight = true;
    let missed = false;
    if (afterMiss) {
      for (const waiter of batch) waiter.resolve(0);
    } else {
      const counts = await waitForReplicas(batch).catch((error: unknown) => {
        for (const waiter of batch) waiter.reject(error); // a reset: each call retries while its deadline allows
        return undefined;
      });
      batch.forEach((waiter, index) => {
        if (!counts) return;
        if (counts[index]! < waiter.required) missed = true;
        waiter.resolve(counts[index]!);
      });
    }
    await this.#sendBatch(missed);
  }
}

/**
 * `WAIT` on the connection that wrote the records, after rewriting each (PEXPIRE) in the same
 * pipeline: WAIT counts this connection's writes, so the rewrites make it cover the records even
 * when the connection is new since the scripts ran, and a reset in between fails them all. A
 * record already gone (a failover since) counts as acknowledged by none. A cluster gets a WAIT
 * per record, on its shard's connection.
 */
async function waitForReplicas(batch: BatchedWrite[]): Promise<number[]> {
  const command = (client: RedisLockClient, key: string, args: string[]): Promise<unknown> => {
    const send = client.sendCommand as unknown as (...params: unknown[]) => Promise<unknown>;
    return Array.isArray(client.masters) ? send.call(client, key, false, args) : send.call(client, args);
  };
  // Its answer arrives before the deadlines: Redis times blocked commands out on its event loop
  // (up to 100 ms late at the default hz 10).
  const remainingMs = Math.min(...batch.map((waiter) => waiter.deadlineAt)) - Date.now();
  const waitMs = String(Math.max(1, remainingMs - Math.min(200, Math.floor(remainingMs / 4))));
  const rewrite = (waiter: BatchedWrite): Promise<unknown> =>
    command(waiter.client, waiter.record.key, ['PEXPIRE', waiter.record.key, String(waiter.record.ttlMs)]);
  const client = batch[0]!.client;
  if (Array.isArray(client.masters)) {
    return Promise.all(
      batch.map(async (waiter) => {
        const [present, acknowledged] = await Promise.all([
          rewrite(waiter),
          command(waiter.client, waiter.record.key, ['WAIT', String(waiter.required), waitMs]),
        ]);
        return Number(present) === 1 ? Number(acknowledged) : 0;
      }),
    );
  }
  const required = Math.max(...batch.map((waiter) => waiter.required));
  const present = batch.map(rewrite);
  const acknowledged = Number(await command(client, '', ['WAIT', String(required), waitMs]));
  return (await Promise.all(present)).map((reply) => (Number(reply) === 1 ? acknowledged : 0));
}

/** The typed error for a write the replicas did not acknowledge in time. */
function notReplicatedError(operation: string, acknowledged: number, required: number, budgetMs: number): StoreUnavailableError {
  return new StoreUnavailableError(
    `Redis ${operation} was acknowledged by ${acknowledged} of ${required} replica(s) within ${budgetMs} ms, so a failover could lose it; ` +
      'nothing was sent. Check the replicas and their link to the primary, or set "replicaAcks" (see docs/redis.md)',
  );
}
