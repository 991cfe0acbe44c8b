/**
 * Partition records in Redis, through the node-redis client of a `@keyv/redis` store. Each
 * partition is one hash (version, partition, cache) under `<keyPrefix>cache:{<partition hash>}`;
 * writes are a compare-and-set on the version in one Lua script, so no lock is needed.
 * The Keyv namespace is honoured as `<namespace>::<key>` (where `@keyv/redis` puts its own keys),
 * so that deployments separated by namespace never share a key; `keyv.clear()` does not touch
 * these keys (they are not Keyv values).
 *
 * With an L1 in front, compare-and-set goes through the L1's tracking connection while it tracks
 * (`writeClient`), and also sets and deletes an echo marker key next to the partition's, so that
 * the tracker recognizes its own write's invalidation and this process's L1 keeps the snapshot it
 * just wrote (see ./l1/redis-invalidations.ts). Reads stay on the app's client.
 */
import { withDeadline } from '../internal/deadline';
import { readyWithin } from '../internal/redis-ready';
import type { ReadyAwareClient } from '../internal/redis-ready';
import { RedisScript } from '../internal/redis-script';
import type { ScriptingClient } from '../internal/redis-script';
import { redisNamespacePrefix } from '../storage-keys';
import type { CompareAndSetResult, PartitionRecord, PartitionStore, ReadResult } from './partition-store';

/** The subset of a node-redis v5 client (or cluster) that this store uses. */
export interface RedisScriptingClient extends ScriptingClient, ReadyAwareClient {
  hmGet(key: string, fields: string[]): Promise<(string | null)[]>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options: { PX: number }): Promise<unknown>;
}

/** The subset of `@keyv/redis`'s KeyvRedis that this store uses. */
export interface KeyvRedisLike {
  getClient(): Promise<unknown>;
  disconnect(force?: boolean): Promise<void>;
  opts: { dialect?: string };
}

/** Whether a Keyv store adapter is `@keyv/redis`'s (duck-typed: the package is an optional peer). */
export function isKeyvRedis(store: unknown): store is KeyvRedisLike {
  const candidate = store as Partial<KeyvRedisLike> | undefined;
  return typeof candidate?.getClient === 'function' && candidate.opts?.dialect === 'redis';
}

// KEYS[1] partition, KEYS[2] (optional) the L1 echo marker, set and deleted with a write so that
// the writer's tracker knows the invalidation as its own; ARGV: expected version ('' = absent or
// not ours), new version, partition hash, cache JSON ('' = delete), ttl ms. A value of another type
// counts as version '' so that the next good write replaces it.
const COMPARE_AND_SET = new RedisScript(`
local kind = redis.call('TYPE', KEYS[1]).ok
local current = ''
if kind == 'hash' then current = redis.call('HGET', KEYS[1], 'version') or '' end
if current ~= ARGV[1] then
  if kind ~= 'hash' then return {0, current, false, false, kind} end
  local fields = redis.call('HMGET', KEYS[1], 'partition', 'cache')
  return {0, current, fields[1], fields[2], kind}
end
if ARGV[4] == '' or kind ~= 'hash' then redis.call('DEL', KEYS[1]) end
if KEYS[2] then
  redis.call('SET', KEYS[2], '1')
  redis.call('DEL', KEYS[2])
end
if ARGV[4] == '' then return {1} end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'partition', ARGV[3], 'cache', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1}
`);

/** Where this process's compare-and-set goes while an L1 tracks Redis (RedisInvalidations.writeClient). */
export interface TrackedWriter {
  /** The tracking connection (ready and tracking). */
  client: RedisScriptingClient;
  /** The echo marker key to set and delete with a write of `redisKey` (namespace included). */
  echoMarker(redisKey: string): string;
}

/** Options of {@link RedisPartitionStore} beyond the store, its deadline and its namespace. */
export interface RedisPartitionStoreOptions {
  /** Where to run compare-and-set instead of the app's client, when it returns one. */
  writeClient?: () => TrackedWriter | undefined;
}

export class RedisPartitionStore implements PartitionStore {
  /** Put before every key: `<namespace>::`, or nothing. */
  private readonly namespacePrefix: string;
  private readonly writeClient: () => TrackedWriter | undefined;

  /**
   * @param namespace - the Keyv namespace to keep keys apart by (none: keys as given)
   * @param options - `writeClient`: the L1's tracking connection while it tracks, for the
   *   compare-and-set (see {@link RedisPartitionStoreOptions})
   */
  constructor(
    private readonly store: KeyvRedisLike,
    private readonly storeTimeoutMs: number,
    namespace?: string,
    options: RedisPartitionStoreOptions = {},
  ) {
    this.namespacePrefix = redisNamespacePrefix(namespace);
    this.writeClient = options.writeClient ?? (() => undefined);
  }

  /**
   * The connected client. While it (re)connects we wait for 'ready' within the deadline instead of
   * sending: node-redis would queue the command and replay it after an outage, long after the
   * caller was told it failed.
   */
  private async client(): Promise<RedisScriptingClient> {
    const client = this.store.getClient() as Promise<RedisScriptingClient>;
    return readyWithin(client, Date.now() + this.storeTimeoutMs, this.storeTimeoutMs);
  }

  async read(storageKey: string): Promise<ReadResult> {
    const client = await this.client();
    let fields: (string | null)[];
    try {
      fields = await withDeadline(
        client.hmGet(this.namespacePrefix + storageKey, ['version', 'partition', 'cache']),
        this.storeTimeoutMs,
        'Redis HMGET',
      );
    } catch (error) {
      if (isWrongType(error)) return { kind: 'corrupt', version: '', reason: 'wrong-type' };
      throw error;
    }
    return toReadResult(fields);
  }

  async compareAndSet(
    storageKey: string,
    expectedVersion: string,
    next: PartitionRecord | null,
    ttlMs: number,
  ): Promise<CompareAndSetResult> {
    const redisKey = this.namespacePrefix + storageKey;
    // The tracking connection is handed out only while it is ready and tracking: no wait needed.
    const tracked = this.writeClient();
    const client = tracked?.client ?? (await this.client());
    const keys = tracked ? [redisKey, tracked.echoMarker(redisKey)] : [redisKey];
    const args = [expectedVersion, next?.version ?? '', next?.partition ?? '', next?.cache ?? '', String(ttlMs)];
    const deadlineAt = Date.now() + this.storeTimeoutMs;
    // Never send the EVAL fallback once the caller has been told the write failed.
    const run = COMPARE_AND_SET.run(client, keys, args, () => Date.now() < deadlineAt && client.isReady !== false);
    const reply = (await withDeadline(run, this.storeTimeoutMs, 'Redis compare-and-set')) as [
      number,
      (string | undefined)?,
      (string | null | undefined)?,
      (string | null | undefined)?,
      (string | undefined)?,
    ];
    if (reply[0] === 1) return { ok: true };
    const [, version = '', partition = null, cache = null, kind] = reply;
    if (kind !== 'hash' && kind !== 'none') return { ok: false, current: { kind: 'corrupt', version: '', reason: 'wrong-type' } };
    return { ok: false, current: toReadResult([version || null, partition, cache]) };
  }

  async getValue(key: string): Promise<string | undefined> {
    const client = await this.client();
    try {
      return (await withDeadline(client.get(this.namespacePrefix + key), this.storeTimeoutMs, 'Redis GET')) ?? undefined;
    } catch (error) {
      if (isWrongType(error)) return undefined;
      throw error;
    }
  }

  async setValue(key: string, value: string, ttlMs: number): Promise<void> {
    const client = await this.client();
    await withDeadline(client.set(this.namespacePrefix + key, value, { PX: ttlMs }), this.storeTimeoutMs, 'Redis SET');
  }

  /** Graceful disconnect, forced when it cannot finish (a graceful one waits for unanswered commands). */
  async close(): Promise<void> {
    try {
      await withDeadline(this.store.disconnect(), this.storeTimeoutMs, 'Redis disconnect');
    } catch {
      await this.store.disconnect(true);
    }
  }
}

function toReadResult([version, partition, cache]: (string | null | undefined)[]): ReadResult {
  if (!version && !partition && !cache) return { kind: 'absent' };
  if (!version || typeof partition !== 'string' || typeof cache !== 'string')
    return { kind: 'corrupt', version: version ?? '', reason: 'wrong-shape' };
  return { kind: 'found', record: { version, partition, cache } };
}

/**
 * Whether a command failed with Redis' `WRONGTYPE` (the key holds another type of value than the
 * command reads), answered directly or as the cause of the error `withDeadline` wraps it in.
 */
function isWrongType(error: unknown): boolean {
  const cause = (error as { cause?: unknown })?.cause ?? error;
  return String((cause as Error)?.message).startsWith('WRONGTYPE');
}
