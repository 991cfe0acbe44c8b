/** The options of PostgresLockStore: their types (public) and their validation. */
import { InvalidArgumentError } from '../../errors';
import { optionalBoolean, optionalPositiveInteger, requireNonEmptyString, requireObject } from '../../internal/validate';
import { DEFAULT_POSTGRES_LOCK_TABLE } from '../../storage-keys';

/** A query result, as `pg` returns it (the parts the lock store reads). */
export interface PostgresQueryResult {
  /** The rows, as objects keyed by column name. */
  rows: Record<string, unknown>[];
  /** How many rows the statement touched. */
  rowCount: number | null;
}

/** A client checked out of a pool (`pg.PoolClient`), the subset the lock store uses. */
export interface PostgresPoolClient {
  /** Runs a statement with `$1`-style parameters. */
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  /** Gives the client back to the pool; with an error (or `true`), the pool destroys it. */
  release(destroy?: Error | boolean): void;
  /** Listens to `LISTEN` notifications and connection errors (the listening client). */
  on?(event: string, listener: (...args: never[]) => void): unknown;
}

/** A `pg.Pool` (structural type): what the lock store needs of one. */
export interface PostgresPool {
  /** Runs one statement on any client of the pool. */
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
  /** Checks a client out (for a transaction, or for `LISTEN`). */
  connect(): Promise<PostgresPoolClient>;
}

/** Options of {@link PostgresLockStore}: exactly one of `connectionString` and `pool`. */
export interface PostgresLockStoreOptions {
  /** A PostgreSQL URL (`postgresql://user:password@host:5432/db`); the store opens (and closes) its own pool. */
  connectionString?: string;
  /** An existing `pg.Pool`; the store checks clients out of it (one is kept for `LISTEN`), and never ends it. */
  pool?: PostgresPool;
  /** The table of leases, claims and outcomes. @defaultValue `'msal_dc_locks'` */
  tableName?: string;
  /** The schema of the table; the connection's `search_path` when not given. */
  schema?: string;
  /**
   * Whether `connect()` (or the first call) creates the table if it is missing. Set `false` where
   * DDL is not allowed at run time, and apply {@link PostgresLockStore.migrationSql} beforehand.
   * @defaultValue true
   */
  createTable?: boolean;
  /** Deadline of every call, from its start: checking a client out, the statements and the commit share it. @defaultValue 2000 */
  commandTimeoutMs?: number;
  /** Longest pause between two polls while waiting (the safety net under `LISTEN`/`NOTIFY`). @defaultValue 250 */
  pollIntervalMs?: number;
  /** How often expired rows are deleted (by one of the store's calls, in the background). @defaultValue 60000 */
  cleanupIntervalMs?: number;
}

/** The options, checked, with their defaults. */
export interface ResolvedPostgresOptions {
  connectionString: string | undefined;
  pool: PostgresPool | undefined;
  tableName: string;
  schema: string | undefined;
  createTable: boolean;
  commandTimeoutMs: number;
  pollIntervalMs: number;
  cleanupIntervalMs: number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A table or schema name: a plain SQL identifier (letters, digits, `_`), so that it can be quoted safely. */
export function requireIdentifier(value: unknown, name: string): string {
  const text = requireNonEmptyString(value, name, 63);
  if (!IDENTIFIER.test(text)) {
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be a plain SQL identifier (letters, digits and _, at most 63)`);
  }
  return text;
}

/**
 * Checks the options (the first bad one is reported) and fills in the defaults.
 *
 * @throws InvalidArgumentError unless exactly one of `connectionString` and `pool` is given, or for a bad option
 */
export function resolvePostgresOptions(options: PostgresLockStoreOptions): ResolvedPostgresOptions {
  requireObject(options, 'options');
  if ((options.connectionString === undefined) === (options.pool === undefined)) {
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_VALUE',
      '"options" must have exactly one of "connectionString" (a PostgreSQL URL) and "pool" (a pg.Pool)',
    );
  }
  const pool = options.pool;
  if (pool !== undefined && (typeof pool?.query !== 'function' || typeof pool.connect !== 'function')) {
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', '"options.pool" must be a pg.Pool (with query() and connect())');
  }
  return {
    connectionString:
      options.connectionString === undefined ? undefined : requireNonEmptyString(options.connectionString, 'options.connectionString'),
    pool,
    tableName: options.tableName === undefined ? DEFAULT_POSTGRES_LOCK_TABLE : requireIdentifier(options.tableName, 'options.tableName'),
    schema: options.schema === undefined ? undefined : requireIdentifier(options.schema, 'options.schema'),
    createTable: optionalBoolean(options.createTable, 'options.createTable', true),
    commandTimeoutMs: optionalPositiveInteger(options.commandTimeoutMs, 'options.commandTimeoutMs', 2000),
    pollIntervalMs: optionalPositiveInteger(options.pollIntervalMs, 'options.pollIntervalMs', 250),
    cleanupIntervalMs: optionalPositiveInteger(options.cleanupIntervalMs, 'options.cleanupIntervalMs', 60_000),
  };
}
