/**
 * The PostgreSQL lock store's SQL: the table (one row per lease or claim, with its fencing
 * counter), and the statements of each step. A step that reads before it writes runs in a
 * transaction that locks the row first (`lockRow`: an upsert, so the row exists and is locked in
 * one statement); the others are one statement each. Times are the server's (`clock_timestamp()`),
 * so every process agrees on when a lease or a record expires. Every step that frees or decides a
 * row notifies the channel with a hash of the row's key, in the same transaction.
 */

/** A quoted identifier (the names were checked to be plain identifiers). */
function quote(name: string): string {
  return `"${name}"`;
}

/** The table's qualified, quoted name. */
export function qualifiedTable(tableName: string, schema: string | undefined): string {
  return schema === undefined ? quote(tableName) : `${quote(schema)}.${quote(tableName)}`;
}

/** The DDL: the table and its expiry index, idempotent (`IF NOT EXISTS`). */
export function migrationSql(tableName: string, schema: string | undefined): string {
  const table = qualifiedTable(tableName, schema);
  return `${schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${quote(schema)};\n`}CREATE TABLE IF NOT EXISTS ${table} (
  key text PRIMARY KEY,
  fence bigint NOT NULL DEFAULT 0,
  owner text,
  lease_expires_at timestamptz,
  attempt_fence bigint,
  attempt_expires_at timestamptz,
  outcome text,
  outcome_fence bigint,
  outcome_expires_at timestamptz,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${quote(`${tableName.slice(0, 52)}_expires_at`)} ON ${table} (expires_at);
`;
}

/** A row as `lockRow` reads it: what is live now, by the server's clock. */
export interface LockRow {
  fence: number;
  /** The owner value (`<token>:<fence>`) while a lease is live. */
  owner: string | undefined;
  attemptLive: boolean;
  /** The outcome while it is live, with its fence. */
  outcome: { value: string; fence: number } | undefined;
}

/** The statements on one table. */
export class LockSql {
  readonly table: string;

  constructor(tableName: string, schema: string | undefined) {
    this.table = qualifiedTable(tableName, schema);
  }

  /** Creates the row if missing (expiring now) and locks it; reads what is live. `$1` key. */
  get lockRow(): string {
    return `INSERT INTO ${this.table} AS t (key, expires_at) VALUES ($1, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET key = t.key
RETURNING t.fence::text AS fence,
  CASE WHEN t.lease_expires_at > clock_timestamp() THEN t.owner END AS owner,
  COALESCE(t.attempt_expires_at > clock_timestamp(), false) AS attempt_live,
  CASE WHEN t.outcome_expires_at > clock_timestamp() THEN t.outcome END AS outcome,
  t.outcome_fence::text AS outcome_fence`;
  }

  /** A new lease with the next fence. `$1` key, `$2` token, `$3` leaseMs, `$4` fence retention ms, `$5` attempt marker ms (0: none). */
  get grant(): string {
    return `UPDATE ${this.table} SET fence = fence + 1, owner = $2::text || ':' || (fence + 1),
  lease_expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond',
  attempt_fence = CASE WHEN $5::float8 > 0 THEN fence + 1 ELSE attempt_fence END,
  attempt_expires_at = CASE WHEN $5::float8 > 0 THEN clock_timestamp() + $5::float8 * interval '1 millisecond' ELSE attempt_expires_at END,
  expires_at = GREATEST(expires_at, clock_timestamp() + GREATEST($3::float8, $4::float8) * interval '1 millisecond')
WHERE key = $1 RETURNING fence::text AS fence`;
  }

  /** Extends the lease if `$2` owns it (live). `$1` key, `$3` leaseMs. */
  get extend(): string {
    return `UPDATE ${this.table} SET lease_expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond',
  expires_at = GREATEST(expires_at, clock_timestamp() + $3::float8 * interval '1 millisecond')
WHERE key = $1 AND owner = $2 AND lease_expires_at > clock_timestamp()`;
  }

  /**
   * Frees the lease if `$2` owns it, and (for a withdraw, `$3` the fence) deletes this claim's
   * attempt marker; notifies `$4` with `$5`. `$1` key.
   */
  get release(): string {
    return `WITH freed AS (
  UPDATE ${this.table} SET owner = NULL, lease_expires_at = NULL,
    attempt_fence = CASE WHEN attempt_fence = $3::bigint THEN NULL ELSE attempt_fence END,
    attempt_expires_at = CASE WHEN attempt_fence = $3::bigint THEN NULL ELSE attempt_expires_at END
  WHERE key = $1 AND owner = $2 AND lease_expires_at > clock_timestamp() RETURNING key)
SELECT pg_notify($4, $5) FROM freed`;
  }

  /** Records outcome `$2` under fence `$3` for `$4` ms, and frees the lease if `$5` owns it. `$1` key. */
  get record(): string {
    return `UPDATE ${this.table} SET outcome = $2, outcome_fence = $3,
  outcome_expires_at = clock_timestamp() + $4::float8 * interval '1 millisecond',
  owner = CASE WHEN owner = $5 THEN NULL ELSE owner END,
  lease_expires_at = CASE WHEN owner = $5 THEN NULL ELSE lease_expires_at END,
  expires_at = GREATEST(expires_at, clock_timestamp() + 2 * $4::float8 * interval '1 millisecond')
WHERE key = $1`;
  }

  /** Frees the lease if `$2` owns it. `$1` key. */
  get unlock(): string {
    return `UPDATE ${this.table} SET owner = NULL, lease_expires_at = NULL WHERE key = $1 AND owner = $2`;
  }

  /** Settles: the next fence for outcome `$2`, kept `$3` ms. `$1` key. */
  get settle(): string {
    return `UPDATE ${this.table} SET fence = fence + 1, outcome = $2, outcome_fence = fence + 1,
  outcome_expires_at = clock_timestamp() + $3::float8 * interval '1 millisecond',
  expires_at = GREATEST(expires_at, clock_timestamp() + 2 * $3::float8 * interval '1 millisecond')
WHERE key = $1`;
  }

  /** Deletes the rows that expired (nothing live left in them). */
  get deleteExpired(): string {
    return `DELETE FROM ${this.table} WHERE expires_at < clock_timestamp()
  AND (lease_expires_at IS NULL OR lease_expires_at < clock_timestamp())`;
  }

  /** Notifies channel `$1` with `$2`. */
  static readonly notify = 'SELECT pg_notify($1, $2)';
}

/** The row `lockRow` returned, typed. */
export function parseLockRow(row: Record<string, unknown>): LockRow {
  const outcome = row['outcome'];
  return {
    fence: Number(row['fence']),
    owner: typeof row['owner'] === 'string' ? row['owner'] : undefined,
    attemptLive: row['attempt_live'] === true,
    outcome: typeof outcome === 'string' ? { value: outcome, fence: Number(row['outcome_fence']) } : undefined,
  };
}
