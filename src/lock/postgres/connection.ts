/**
 * The PostgreSQL lock store's connections: `pg` loaded when first needed (an optional peer
 * dependency), a pool it opens from `connectionString` (and ends) or a pool it was given (never
 * ended), and every call under one deadline: checking a client out, the statements and the commit
 * share `commandTimeoutMs`. A client whose call timed out or failed is destroyed, not reused. A
 * connection that resets (server restart, failover) is not the end: the call is sent again while
 * its deadline allows (every step is idempotent: a retry finds its own owner or outcome).
 */
import { createRequire } from 'node:module';
import { setTimeout as delay } from 'node:timers/promises';
import { ClosedError, StoreUnavailableError } from '../../errors';
import { remainingMs, withDeadline } from '../../internal/deadline';
import type { PostgresPool, PostgresPoolClient, ResolvedPostgresOptions } from './options';

/** What the store uses of the `pg` module. */
export interface PgModule {
  Pool: new (
    config: Record<string, unknown>,
  ) => PostgresPool & { end(): Promise<void>; on(event: 'error', listener: (error: Error) => void): unknown };
}

let loadedPg: PgModule | undefined;

/** The `pg` module, loaded once; a typed error when it is not installed. */
export function loadPg(): PgModule {
  if (!loadedPg) {
    try {
      loadedPg = createRequire(__filename)('pg') as PgModule;
    } catch (error) {
      throw new StoreUnavailableError(
        'PostgresLockStore needs the "pg" package, which is not installed: npm install pg (an optional peer dependency of msal-distributed-cache)',
        { cause: error },
      );
    }
  }
  return loadedPg;
}

/** The error of every call after `close()`. */
export function closedError(): ClosedError {
  return new ClosedError('this PostgresLockStore is closed; create a new one');
}

/** An error after which the statement may be sent again on another connection. */
export function isConnectionError(error: unknown): boolean {
  const cause = error instanceof StoreUnavailableError && error.cause !== undefined ? error.cause : error;
  if (typeof cause !== 'object' || cause === null) return false;
  const { code, message } = cause as { code?: unknown; message?: unknown };
  return (
    (typeof code === 'string' &&
      (['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT'].includes(code) || /^(08|57P)/.test(code))) ||
    /Connection terminated|connection (is )?closed|not queryable|ECONNRESET|ECONNREFUSED/i.test(String(message))
  );
}

/** Clients given an 'error' listener already (a pooled client is checked out many times). */
const listened = new WeakSet<PostgresPoolClient>();

/**
 * A checked-out client emits 'error' when its connection is lost (server restart); without a
 * listener that would end the process. The statement under way rejects as well, and the call
 * destroys the client, so the listener has nothing else to do.
 */
function withErrorListener(client: PostgresPoolClient): PostgresPoolClient {
  if (!listened.has(client)) {
    listened.add(client);
    client.on?.('error', (() => undefined) as never);
  }
  return client;
}

/** The pool of one lock store, and its calls under a deadline. */
export class PostgresConnection {
  readonly #options: ResolvedPostgresOptions;
  #pool: PostgresPool | undefined;
  #ownPool: { end(): Promise<void> } | undefined;
  #closed = false;

  constructor(options: ResolvedPostgresOptions) {
    this.#options = options;
    this.#pool = options.pool;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The pool: the given one, or one opened from `connectionString` on first use. */
  pool(): PostgresPool {
    if (this.#closed) throw closedError();
    if (!this.#pool) {
      const { Pool } = loadPg();
      const pool = new Pool({
        connectionString: this.#options.connectionString,
        connectionTimeoutMillis: this.#options.commandTimeoutMs,
        max: 10,
      });
      pool.on('error', () => undefined); // an idle client lost: the pool drops it, the next call gets another
      this.#pool = pool;
      this.#ownPool = pool;
    }
    return this.#pool;
  }

  /** A client checked out within `deadlineAt`; one checked out too late goes back to the pool. */
  async checkout(deadlineAt: number, operation: string): Promise<PostgresPoolClient> {
    const checkingOut = this.pool().connect().then(withErrorListener);
    try {
      return await withDeadline(checkingOut, remainingMs(deadlineAt), `PostgreSQL ${operation} (connect)`, this.#options.commandTimeoutMs);
    } catch (error) {
      checkingOut.then((client) => client.release(true)).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Runs `work` on a checked-out client within one `commandTimeoutMs`, retrying after a connection
   * error while time is left; any failure is a `StoreUnavailableError` that says what to check.
   */
  async run<T>(operation: string, work: (client: PostgresPoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    const budgetMs = this.#options.commandTimeoutMs;
    const deadlineAt = Date.now() + budgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await this.checkout(deadlineAt, operation);
        try {
          const result = await withDeadline(work(client), remainingMs(deadlineAt), `PostgreSQL ${operation}`, budgetMs);
          client.release();
          return result;
        } catch (error) {
          client.release(true); // perhaps mid-transaction or stuck: never reuse it
          throw error;
        }
      } catch (error) {
        if (this.#closed) throw closedError();
        if (!isConnectionError(error) || Date.now() >= deadlineAt) throw this.#explained(error, operation);
        await delay(Math.min(remainingMs(deadlineAt), 10 * 2 ** Math.min(attempt, 5)), undefined, { ref: false });
      }
    }
  }

  /** Refuses further use; `false` when it was closed already. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Ends the pool it opened (never a given one), once its clients are back. */
  async endOwnPool(): Promise<void> {
    await this.#ownPool?.end().catch(() => undefined);
  }

  /** A typed error naming what to check. */
  #explained(error: unknown, operation: string): StoreUnavailableError {
    if (error instanceof StoreUnavailableError && /did not answer within/.test(error.message)) {
      return new StoreUnavailableError(`${error.message}; ${this.#whatToCheck()}`, { cause: error.cause ?? error });
    }
    const cause = error instanceof StoreUnavailableError && error.cause !== undefined ? error.cause : error;
    const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    return new StoreUnavailableError(`PostgreSQL ${operation} failed: ${text}; ${this.#whatToCheck()}`, { cause });
  }

  #whatToCheck(): string {
    const table = this.#options.schema === undefined ? this.#options.tableName : `${this.#options.schema}.${this.#options.tableName}`;
    return (
      `check that PostgreSQL is up and reachable with the store's ${this.#options.pool ? 'pool' : 'connectionString'} ` +
      `(host, port, credentials, TLS, free connections) and that the table ${table} exists (see docs/postgres.md)`
    );
  }
}
