/**
 * Partition records in PostgreSQL, for a Keyv store that is `@keyv/postgres`'s: one row per
 * partition (key, version, partition, cache, expires_at) in a table of our own, through a `pg`
 * pool opened from the KeyvPostgres's URI and options. Compare-and-set is ONE statement (an
 * `INSERT ... ON CONFLICT DO UPDATE` whose update keeps the row unless its version is the expected
 * one, or a `DELETE ... WHERE version = $expected`), so no lock is needed and a late write never
 * overwrites newer data; on conflict the statement returns the current row for the 3-way merge.
 * Expired rows read as absent (version `''`) and are removed in the background. Outcome records
 * (getValue/setValue) live in a second table with the same TTL scheme. The Keyv namespace is
 * honoured as `<namespace>::<key>`, as on Redis. `pg` is an optional peer dependency, loaded on
 * first use.
 */
import { createRequire } from 'node:module';
import { withDeadline } from '../internal/deadline';
import { redisNamespacePrefix } from '../storage-keys';
import type { CompareAndSetResult, PartitionRecord, PartitionStore, ReadResult } from './partition-store';

/** The subset of a `pg` Pool this store uses. */
export interface PgPoolLike {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount?: number | null }>;
  end(): Promise<void>;
  on?(event: 'error', listener: (error: Error) => void): unknown;
}

/** The subset of `@keyv/postgres`'s KeyvPostgres this store uses. */
export interface KeyvPostgresLike {
  opts: { dialect?: string; uri?: string; schema?: string; [option: string]: unknown };
  query: unknown;
}

/** Whether a Keyv store adapter is `@keyv/postgres`'s (duck-typed: the package is an optional peer). */
export function isKeyvPostgres(store: unknown): store is KeyvPostgresLike {
  const candidate = store as Partial<KeyvPostgresLike> | undefined;
  return typeof candidate?.query === 'function' && candidate.opts?.dialect === 'postgres' && typeof candidate.opts.uri === 'string';
}

/** Table names of {@link PostgresPartitionStore}. */
export interface PostgresPartitionTables {
  /** Default `msal_dc_partitions`. */
  partitions?: string;
  /** Default `msal_dc_values`. */
  values?: string;
  /** Default `public`. */
  schema?: string;
}

const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;

function tableNames(tables: PostgresPartitionTables = {}): { partitions: string; values: string; schema: string } {
  const schema = quote(tables.schema ?? 'public');
  return {
    schema,
    partitions: `${schema}.${quote(tables.partitions ?? 'msal_dc_partitions')}`,
    values: `${schema}.${quote(tables.values ?? 'msal_dc_values')}`,
  };
}

/** How often expired rows are deleted (at most), by a statement after a write. */
const CLEANUP_INTERVAL_MS = 60_000;

/** Whether a row is live, and its version as compare-and-set sees it (`''` when expired). */
const LIVE = 'p.expires_at > now()';
const EFFECTIVE_VERSION = `(CASE WHEN ${LIVE} THEN p.version ELSE '' END)`;

export class PostgresPartitionStore implements PartitionStore {
  readonly #pool: PgPoolLike;
  readonly #namespacePrefix: string;
  readonly #tables: { partitions: string; values: string; schema: string };
  readonly #tableOptions: PostgresPartitionTables | undefined;
  readonly #sql: { upsert: string; remove: string; read: string; get: string; set: string };
  #ready: Promise<void> | undefined;
  #nextCleanupAt = 0;

  /**
   * @param pool - a `pg` Pool (owned: closed by {@link close})
   * @param storeTimeoutMs - the deadline of every call
   * @param namespace - the Keyv namespace to keep keys apart by (none: keys as given)
   */
  constructor(
    pool: PgPoolLike,
    private readonly storeTimeoutMs: number,
    namespace?: string,
    tables?: PostgresPartitionTables,
  ) {
    this.#pool = pool;
    pool.on?.('error', () => undefined); // an idle client's lost connection: the next query reconnects
    this.#namespacePrefix = redisNamespacePrefix(namespace);
    this.#tables = tableNames(tables);
    this.#tableOptions = tables;
    const { partitions, values } = this.#tables;
    // $1 key, $2 expected version ('' = absent or expired), $3 new version, $4 partition, $5 cache, $6 ttl ms.
    // Absent and $2 <> '': the row inserted is already expired (reads as absent), so nothing is written.
    const matched = `${EFFECTIVE_VERSION} = $2`;
    const expiresAt = `now() + $6::double precision * interval '1 millisecond'`;
    this.#sql = {
      upsert: `INSERT INTO ${partitions} AS p (key, version, partition, cache, expires_at)
VALUES ($1, $3, $4, $5, CASE WHEN $2 = '' THEN ${expiresAt} ELSE '-infinity'::timestamptz END)
ON CONFLICT (key) DO UPDATE SET
  version = CASE WHEN ${matched} THEN EXCLUDED.version ELSE p.version END,
  partition = CASE WHEN ${matched} THEN EXCLUDED.partition ELSE p.partition END,
  cache = CASE WHEN ${matched} THEN EXCLUDED.cache ELSE p.cache END,
  expires_at = CASE WHEN ${matched} THEN ${expiresAt} ELSE p.expires_at END
RETURNING p.version = $3 AND ${LIVE} AS written, ${LIVE} AS live, p.version, p.partition, p.cache`,
      remove: `WITH removed AS (DELETE FROM ${partitions} AS p WHERE p.key = $1 AND ${matched} RETURNING 1)
SELECT EXISTS (SELECT 1 FROM removed) AS removed, p.version, p.partition, p.cache
FROM (SELECT 1) AS one LEFT JOIN ${partitions} AS p ON p.key = $1 AND ${LIVE}`,
      read: `SELECT p.version, p.partition, p.cache FROM ${partitions} AS p WHERE p.key = $1 AND ${LIVE}`,
      get: `SELECT p.value FROM ${values} AS p WHERE p.key = $1 AND ${LIVE}`,
      set: `INSERT INTO ${values} AS p (key, value, expires_at) VALUES ($1, $2, now() + $3::double precision * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
    };
  }

  /** Opens a `pg` Pool from a KeyvPostgres's URI and options (`pg` loaded now: an optional peer). */
  static fromKeyv(store: KeyvPostgresLike, storeTimeoutMs: number, namespace?: string): PostgresPartitionStore {
    const {
      uri,
      dialect: _dialect,
      table: _table,
      keySize: _keySize,
      iterationLimit: _limit,
      useUnloggedTable: _unlogged,
      schema,
      ...options
    } = store.opts;
    const pool = openPgPool({
      ...options,
      connectionString: uri,
      connectionTimeoutMillis: storeTimeoutMs,
      query_timeout: storeTimeoutMs,
    });
    return new PostgresPartitionStore(pool, storeTimeoutMs, namespace, typeof schema === 'string' ? { schema } : {});
  }

  /** The DDL this store runs on first use (idempotent), for teams that create tables by migration. */
  static migrationSql(tables?: PostgresPartitionTables): string {
    const { schema, partitions, values } = tableNames(tables);
    return `CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${partitions} (
  key TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  partition TEXT NOT NULL,
  cache TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS ${quote(`${(tables?.partitions ?? 'msal_dc_partitions').slice(0, 50)}_expires_at`)} ON ${partitions} (expires_at);
CREATE TABLE IF NOT EXISTS ${values} (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS ${quote(`${(tables?.values ?? 'msal_dc_values').slice(0, 50)}_expires_at`)} ON ${values} (expires_at);
`;
  }

  /** Runs one statement within the deadline, creating the tables first (once; again after a failure). */
  async #query(text: string, values: unknown[], operation: string): Promise<Record<string, unknown>[]> {
    const deadlineAt = Date.now() + this.storeTimeoutMs;
    const work = (async () => {
      this.#ready ??= this.#createTables().catch((error: unknown) => {
        this.#ready = undefined;
        throw error;
      });
      await this.#ready;
      return (await this.#pool.query(text, values)).rows;
    })();
    return withDeadline(work, Math.max(1, deadlineAt - Date.now()), `PostgreSQL ${operation}`, this.storeTimeoutMs);
  }

  /**
   * Creates the tables unless both exist already (so that a role without the right to create
   * tables works on migrated ones); the DDL runs again once when another connection created the
   * same objects at the same moment (`IF NOT EXISTS` does not guard against a concurrent `CREATE`).
   */
  async #createTables(): Promise<void> {
    const { partitions, values } = this.#tables;
    const { rows } = await this.#pool.query('SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS present', [
      partitions,
      values,
    ]);
    if (rows[0]?.present === true) return;
    const ddl = PostgresPartitionStore.migrationSql(this.#tableOptions);
    try {
      await this.#pool.query(ddl);
    } catch (error) {
      if (!['23505', '42P07', '42710'].includes(String((error as { code?: unknown }).code))) throw error;
      await this.#pool.query(ddl);
    }
  }

  async read(storageKey: string): Promise<ReadResult> {
    const [row] = await this.#query(this.#sql.read, [this.#namespacePrefix + storageKey], 'read');
    return row ? found(row) : { kind: 'absent' };
  }

  async compareAndSet(
    storageKey: string,
    expectedVersion: string,
    next: PartitionRecord | null,
    ttlMs: number,
  ): Promise<CompareAndSetResult> {
    const key = this.#namespacePrefix + storageKey;
    if (next === null) {
      const [row] = await this.#query(this.#sql.remove, [key, expectedVersion], 'compare-and-delete');
      const absent = row!.version === null;
      if (row!.removed === true || (absent && expectedVersion === '')) return { ok: true };
      return { ok: false, current: absent ? { kind: 'absent' } : found(row!) };
    }
    const [row] = await this.#query(
      this.#sql.upsert,
      [key, expectedVersion, next.version, next.partition, next.cache, Math.max(1, ttlMs)],
      'compare-and-set',
    );
    this.#cleanupSoon();
    if (row!.written === true) return { ok: true };
    return { ok: false, current: row!.live === true ? found(row!) : { kind: 'absent' } };
  }

  async getValue(key: string): Promise<string | undefined> {
    const [row] = await this.#query(this.#sql.get, [this.#namespacePrefix + key], 'read of a value');
    return typeof row?.value === 'string' ? row.value : undefined;
  }

  async setValue(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#query(this.#sql.set, [this.#namespacePrefix + key, value, Math.max(1, ttlMs)], 'write of a value');
    this.#cleanupSoon();
  }

  /** Deletes expired rows (a bounded batch per table), at most once per interval, in the background. */
  #cleanupSoon(): void {
    if (Date.now() < this.#nextCleanupAt) return;
    this.#nextCleanupAt = Date.now() + CLEANUP_INTERVAL_MS;
    void this.cleanup().catch(() => undefined);
  }

  /** Deletes up to `limit` expired rows of each table now; resolves to how many. */
  async cleanup(limit = 1000): Promise<number> {
    let deleted = 0;
    for (const table of [this.#tables.partitions, this.#tables.values]) {
      const rows = await this.#query(
        `WITH gone AS (DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE expires_at <= now() LIMIT $1) RETURNING 1) SELECT count(*)::int AS n FROM gone`,
        [limit],
        'cleanup',
      );
      deleted += Number(rows[0]?.n ?? 0);
    }
    return deleted;
  }

  async close(): Promise<void> {
    await withDeadline(this.#pool.end(), this.storeTimeoutMs, 'PostgreSQL pool end');
  }
}

function found(row: Record<string, unknown>): ReadResult {
  const { version, partition, cache } = row;
  if (typeof version !== 'string' || version === '' || typeof partition !== 'string' || typeof cache !== 'string')
    return { kind: 'corrupt', version: typeof version === 'string' ? version : '', reason: 'wrong-shape' };
  return { kind: 'found', record: { version, partition, cache } };
}

/** `pg`'s Pool constructor. */
interface PgModule {
  Pool: new (config: Record<string, unknown>) => PgPoolLike;
}

/** A new `pg` Pool (`pg` is loaded now: an optional peer dependency). */
export function openPgPool(config: Record<string, unknown>): PgPoolLike {
  let pg: PgModule;
  try {
    pg = createRequire(__filename)('pg') as PgModule;
  } catch (error) {
    throw new Error("PostgresPartitionStore needs the 'pg' package (npm install pg), an optional peer dependency", { cause: error });
  }
  return new pg.Pool(config);
}
