/**
 * PostgresLockStore: leases and single-use claims shared by every process that uses the same
 * PostgreSQL. This file is the protocol; its parts are beside it: sql.ts (the table and the
 * statements), connection.ts (`pg`, the pool, deadlines), waiters.ts (`LISTEN`/`NOTIFY` and
 * polling) and options.ts. One row per lease or claim holds its fencing counter, the owner
 * (`<token>:<fence>`) with the lease's expiry, the attempt marker and the outcome (`<fence>`, and
 * its expiry); a step that reads before it writes locks the row in a transaction. Every step is
 * idempotent (a retry after a lost reply finds its own owner or outcome), as on Redis.
 */
import { randomBytes } from 'node:crypto';
import { LockTimeoutError } from '../../errors';
import { remainingMs, withDeadline } from '../../internal/deadline';
import { sha256Hex, shortHash } from '../../internal/hash';
import { requireNonEmptyString, requirePositiveInteger } from '../../internal/validate';
import { postgresLockChannel, postgresLockRowKeys } from '../../storage-keys';
import type { Claim, ClaimOptions, Lease, LockOptions, LockStore } from '../lock-store';
import { closedError, PostgresConnection } from './connection';
import { ownFence, ownLease } from './lease';
import type { PostgresLease } from './lease';
import { requireIdentifier, resolvePostgresOptions } from './options';
import type { PostgresLockStoreOptions, PostgresPoolClient } from './options';
import { LockSql, migrationSql, parseLockRow } from './sql';
import type { LockRow } from './sql';
import { PostgresWaiters } from './waiters';

export type { PostgresLockStoreOptions, PostgresPool, PostgresPoolClient, PostgresQueryResult } from './options';

const FENCE_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * A lock store in PostgreSQL, shared by every process that uses the same database: what makes
 * redeem-once and single-flight work across instances without Redis. Give the same one (the same
 * database and table) to every instance's {@link DistributedTokenCache}. Needs the `pg` package.
 *
 * @example
 * ```ts
 * const lockStore = new PostgresLockStore({ connectionString: 'postgresql://app@db:5432/app' });
 * await lockStore.connect(); // creates the table unless createTable: false
 * const cache = new DistributedTokenCache({ store, lockStore });
 * ```
 */
export class PostgresLockStore implements LockStore {
  readonly #commandTimeoutMs: number;
  readonly #createTable: boolean;
  readonly #ddl: string;
  readonly #channel: string;
  readonly #sql: LockSql;
  readonly #connection: PostgresConnection;
  readonly #waiters: PostgresWaiters;
  readonly #cleanupIntervalMs: number;
  #tableReady: Promise<void> | undefined;
  #lastCleanupAt = Date.now();

  /**
   * Creates the store; connections are opened on first use.
   *
   * @param options - `connectionString` or `pool`, and optionally the table, schema and deadlines
   * @throws InvalidArgumentError unless exactly one of `connectionString` and `pool` is given, or for a bad option
   */
  constructor(options: PostgresLockStoreOptions) {
    const resolved = resolvePostgresOptions(options);
    this.#commandTimeoutMs = resolved.commandTimeoutMs;
    this.#createTable = resolved.createTable;
    this.#ddl = migrationSql(resolved.tableName, resolved.schema);
    this.#channel = postgresLockChannel(resolved.tableName);
    this.#sql = new LockSql(resolved.tableName, resolved.schema);
    this.#cleanupIntervalMs = resolved.cleanupIntervalMs;
    this.#connection = new PostgresConnection(resolved);
    this.#waiters = new PostgresWaiters(this.#connection, this.#channel, resolved);
  }

  /**
   * The DDL of the store's table (idempotent: `CREATE ... IF NOT EXISTS`), for teams that apply
   * migrations themselves and set `createTable: false`.
   *
   * @param options - the table name (default `msal_dc_locks`) and schema, as given to the store
   * @returns the SQL text
   */
  static migrationSql(options: { tableName?: string; schema?: string } = {}): string {
    const tableName = options.tableName === undefined ? undefined : requireIdentifier(options.tableName, 'options.tableName');
    const schema = options.schema === undefined ? undefined : requireIdentifier(options.schema, 'options.schema');
    return migrationSql(tableName ?? 'msal_dc_locks', schema);
  }

  /** Keys somebody in this process is waiting on (for tests and stats; empty when idle). */
  get waitingKeys(): number {
    return this.#waiters.keys;
  }

  async acquire(key: string, options: LockOptions): Promise<Lease> {
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const waitTimeoutMs = requirePositiveInteger(options.waitTimeoutMs, 'options.waitTimeoutMs');
    const row = postgresLockRowKeys(key).lease;
    const token = randomBytes(12).toString('base64url');
    const deadline = Date.now() + waitTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const fence = await this.#transaction('lock acquire', row, async (client, current) => {
        const own = ownFence(current.owner, token);
        if (own !== undefined) return own;
        if (current.owner !== undefined) return 0;
        return this.#grant(client, row, token, leaseMs, FENCE_TTL_MS, 0);
      });
      if (fence > 0) return this.#lease(key, row, `${token}:${fence}`, fence);
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new LockTimeoutError(
          `lock ${shortHash(key)} (hash) was not free within ${waitTimeoutMs} ms; retry later or raise the wait timeout`,
        );
      await this.waitForChange(key, Math.min(remaining, this.#waiters.pollIntervalMs(attempt)));
    }
  }

  async claim(key: string, options: ClaimOptions): Promise<Claim> {
    requireNonEmptyString(key, 'key');
    const leaseMs = requirePositiveInteger(options.leaseMs, 'options.leaseMs');
    const recordTtlMs = requirePositiveInteger(options.recordTtlMs, 'options.recordTtlMs');
    const row = postgresLockRowKeys(key).claim;
    const token = randomBytes(12).toString('base64url');
    const reply = await this.#transaction('claim', row, async (client, current): Promise<Claim | { state: 'granted'; fence: number }> => {
      const own = ownFence(current.owner, token);
      if (own !== undefined) return { state: 'granted', fence: own };
      if (current.outcome) return { state: 'done', outcome: current.outcome.value };
      if (current.owner !== undefined) return { state: 'busy' };
      if (current.attemptLive) return { state: 'abandoned' };
      return { state: 'granted', fence: await this.#grant(client, row, token, leaseMs, 2 * recordTtlMs, recordTtlMs) };
    });
    if (reply.state !== 'granted') return reply;
    return { state: 'claimed', lease: this.#lease(key, row, `${token}:${reply.fence}`, reply.fence) };
  }

  async complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean> {
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const owned = ownLease(lease);
    const recorded = await this.#transaction('complete', owned.row, async (client, current) => {
      if (current.outcome?.fence === lease.fence && current.outcome.value === outcome) {
        await client.query(this.#sql.unlock, [owned.row, owned.ownerValue]);
        return true;
      }
      if (current.outcome && current.outcome.fence >= lease.fence) return false;
      await client.query(this.#sql.record, [owned.row, outcome, lease.fence, recordTtlMs, owned.ownerValue]);
      await this.#notify(client, lease.key);
      return true;
    });
    owned.markEnded();
    return recorded;
  }

  async withdraw(lease: Lease): Promise<boolean> {
    const owned = ownLease(lease);
    const result = await this.#connection.run('withdraw', async (client) => {
      await this.#ensureTable(client);
      return client.query(this.#sql.release, [owned.row, owned.ownerValue, lease.fence, this.#channel, sha256Hex(lease.key)]);
    });
    owned.markEnded();
    return result.rowCount === 1;
  }

  async settle(key: string, outcome: string, recordTtlMs: number): Promise<string> {
    requirePositiveInteger(recordTtlMs, 'recordTtlMs');
    const row = postgresLockRowKeys(key).claim;
    return this.#transaction('settle', row, async (client, current) => {
      if (current.outcome) return current.outcome.value;
      await client.query(this.#sql.settle, [row, outcome, recordTtlMs]);
      await this.#notify(client, key);
      return outcome;
    });
  }

  async waitForChange(key: string, timeoutMs: number): Promise<void> {
    if (this.#connection.closed) throw closedError();
    // Notifications carry a hash of the key (a lease's row and a claim's row share it).
    await this.#waiters.wait(sha256Hex(key), timeoutMs);
  }

  /**
   * Connects now instead of on first use, and creates the table unless `createTable: false`; then
   * (best effort, within the same `commandTimeoutMs`) starts listening for changes.
   *
   * @throws StoreUnavailableError when PostgreSQL does not answer within `commandTimeoutMs`, or the table cannot be created
   * @throws ClosedError after {@link close}
   */
  async connect(): Promise<void> {
    if (this.#connection.closed) throw closedError();
    const deadlineAt = Date.now() + this.#commandTimeoutMs;
    await this.#connection.run('connect', (client) => this.#ensureTable(client));
    await withDeadline(this.#waiters.listen(), remainingMs(deadlineAt), 'PostgreSQL LISTEN').catch(() => undefined);
  }

  /**
   * Deletes the rows that expired (leases, attempt markers and outcomes whose time is over). The
   * store does it itself every `cleanupIntervalMs`, in the background of a call; expired rows are
   * ignored on read meanwhile.
   *
   * @returns how many rows were deleted
   * @throws StoreUnavailableError when PostgreSQL does not answer within `commandTimeoutMs`
   */
  async deleteExpired(): Promise<number> {
    const result = await this.#connection.run('cleanup', async (client) => {
      await this.#ensureTable(client);
      return client.query(this.#sql.deleteExpired);
    });
    return result.rowCount ?? 0;
  }

  /** Closes the connections this store opened (not a `pool` it was given); wakes the waiters. Idempotent. */
  async close(): Promise<void> {
    if (!this.#connection.markClosed()) return;
    await this.#waiters.close();
    await this.#connection.endOwnPool();
  }

  /** Creates the table once per store (unless `createTable: false`). */
  async #ensureTable(client: PostgresPoolClient): Promise<void> {
    if (!this.#createTable) return;
    this.#tableReady ??= client.query(this.#ddl).then(
      () => undefined,
      (error: unknown) => {
        this.#tableReady = undefined;
        // Two processes creating it at once: one wins, the other's unique violation means it exists.
        if ((error as { code?: string }).code === '23505' || (error as { code?: string }).code === '42P07') return;
        throw error;
      },
    );
    await this.#tableReady;
  }

  /** A step in a transaction on the locked row: `work` reads `current` and writes. */
  async #transaction<T>(operation: string, row: string, work: (client: PostgresPoolClient, current: LockRow) => Promise<T>): Promise<T> {
    this.#maybeCleanup();
    return this.#connection.run(operation, async (client) => {
      await this.#ensureTable(client);
      await client.query('BEGIN');
      try {
        const locked = await client.query(this.#sql.lockRow, [row]);
        const result = await work(client, parseLockRow(locked.rows[0]!));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  /** Grants the next fence (a lease, and an attempt marker for a claim); the fence. */
  async #grant(
    client: PostgresPoolClient,
    row: string,
    token: string,
    leaseMs: number,
    fenceTtlMs: number,
    attemptMs: number,
  ): Promise<number> {
    const granted = await client.query(this.#sql.grant, [row, token, leaseMs, fenceTtlMs, attemptMs]);
    return Number(granted.rows[0]!['fence']);
  }

  /** Announces, at commit, that `key` changed. */
  async #notify(client: PostgresPoolClient, key: string): Promise<void> {
    await client.query(LockSql.notify, [this.#channel, sha256Hex(key)]);
  }

  /** Every `cleanupIntervalMs`, a call deletes the expired rows in the background. */
  #maybeCleanup(): void {
    if (Date.now() - this.#lastCleanupAt < this.#cleanupIntervalMs) return;
    this.#lastCleanupAt = Date.now();
    this.deleteExpired().catch(() => undefined); // next time, then
  }

  #lease(key: string, row: string, ownerValue: string, fence: number): PostgresLease {
    let ended = false;
    return {
      key,
      fence,
      ownerValue,
      row,
      markEnded: () => {
        ended = true;
      },
      extend: async (leaseMs: number) => {
        requirePositiveInteger(leaseMs, 'leaseMs');
        if (ended) return false;
        const result = await this.#connection.run('lock extend', (client) => client.query(this.#sql.extend, [row, ownerValue, leaseMs]));
        return result.rowCount === 1;
      },
      release: async () => {
        if (ended) return;
        ended = true;
        await this.#connection
          .run('lock release', (client) => client.query(this.#sql.release, [row, ownerValue, null, this.#channel, sha256Hex(key)]))
          .catch(() => undefined); // the lease expires anyway
      },
    };
  }
}
