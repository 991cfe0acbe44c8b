// RedisInvalidations on a real Redis, with an L1Recorder in place of the L1: what tracking reports
// (and what it must not), and what it does when its connection is killed, the server paused or
// restarted. Faults run on a redis-server of their own.
import { randomUUID } from 'node:crypto';
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import KeyvRedis, { createClient } from '@keyv/redis';
import { RedisInvalidations, TRACKING_CONNECTION_NAME } from '../../src/cache/l1/redis-invalidations';
import { RedisPartitionStore } from '../../src/cache/redis-partition-store';
import type { KeyvRedisLike } from '../../src/cache/redis-partition-store';
import type { PartitionRecord } from '../../src/cache/partition-store';
import { partitionKeysPrefix, partitionStorageKey } from '../../src/storage-keys';
import { RedisServer } from '../../src/testing';
import { L1Recorder, trackingConnectionIdsIn } from '../helpers/l1-tracking';
import { redisUrl } from '../helpers/stores';

const TIMEOUT_MS = 500;
const TTL_MS = 60_000;
const namespace = 'l1-ns';

// What the tests send on any client (the app's, a raw one, the tracking connection).
interface RawClient {
  sendCommand(args: string[]): Promise<unknown>;
  set(key: string, value: string): Promise<unknown>;
  hSet(key: string, fields: Record<string, string>): Promise<unknown>;
  flushDb(): Promise<unknown>;
  destroy(): void;
}

const record = (version: string): PartitionRecord => ({ version, partition: 'partition', cache: '{}' });

/** One process's view: its Keyv store, its tracker, what the L1 was told, and its partition store. */
interface Tracker {
  keyPrefix: string;
  store: KeyvRedis<unknown>;
  l1: RecordingL1;
  invalidations: RedisInvalidations;
  /** Compare-and-set through the tracking connection while coherent (as the cache wires it). */
  partitions: RedisPartitionStore;
  close(): Promise<void>;
}

/** Also records, at each coherence change, whether a write client is handed out in that state. */
class RecordingL1 extends L1Recorder {
  readonly writerAtChange: boolean[] = [];
  invalidations: RedisInvalidations | undefined;

  override setCoherent(coherent: boolean): void {
    this.writerAtChange.push(this.invalidations?.writeClient() !== undefined);
    super.setCoherent(coherent);
  }
}

function newTracker(url: string, keyPrefix = `l1-${randomUUID()}:`): Tracker {
  const store = new KeyvRedis(url);
  const l1 = new RecordingL1();
  const keyv = store as unknown as KeyvRedisLike;
  const invalidations = new RedisInvalidations(keyv, l1, {
    trackedPrefix: partitionKeysPrefix(keyPrefix),
    namespace,
    timeoutMs: TIMEOUT_MS,
  });
  l1.invalidations = invalidations;
  const partitions = new RedisPartitionStore(keyv, TIMEOUT_MS, namespace, { writeClient: () => invalidations.writeClient() });
  return {
    keyPrefix,
    store,
    l1,
    invalidations,
    partitions,
    close: async () => {
      await invalidations.close();
      await store.disconnect(true);
    },
  };
}

/** Starts tracking, connects the app's client (tracking waits for it) and waits until coherent. */
async function started(tracker: Tracker): Promise<Tracker> {
  tracker.invalidations.start();
  await tracker.store.getClient();
  await tracker.l1.until('coherent:true');
  return tracker;
}

async function connectedRaw(url: string): Promise<RawClient> {
  const raw = createClient({ url });
  raw.on('error', () => undefined);
  await raw.connect();
  return raw as unknown as RawClient;
}

/** The ids of the tracking connections, from CLIENT LIST. */
async function trackingConnectionIds(raw: RawClient): Promise<string[]> {
  return trackingConnectionIdsIn(await raw.sendCommand(['CLIENT', 'LIST']));
}

describe('RedisInvalidations on a shared Redis', () => {
  let raw: RawClient;
  const trackers: Tracker[] = [];

  beforeAll(async () => {
    raw = await connectedRaw(redisUrl());
  });
  afterAll(() => raw.destroy());
  afterEach(async () => {
    for (const tracker of trackers.splice(0)) await tracker.close();
  });

  const tracker = async (keyPrefix?: string): Promise<Tracker> => {
    const created = newTracker(redisUrl(), keyPrefix);
    trackers.push(created);
    return started(created);
  };
  const keyOf = (tracker: Tracker, name: string): string => partitionStorageKey(tracker.keyPrefix, name);
  const inRedis = (storageKey: string): string => `${namespace}::${storageKey}`;

  it('turns coherent once the app connects, tracking <namespace>::<keyPrefix>cache: in BCAST NOLOOP mode on a connection of its own', async () => {
    const created = newTracker(redisUrl());
    trackers.push(created);
    created.invalidations.start();
    expect(created.invalidations.writeClient()).toBeUndefined();
    await started(created);

    const writer = created.invalidations.writeClient();
    expect(writer).toBeDefined();
    const connection = writer!.client as unknown as RawClient;
    const info = (await connection.sendCommand(['CLIENT', 'TRACKINGINFO'])) as { flags: string[]; prefixes: string[] };
    expect([...info.flags].sort()).toEqual(['bcast', 'noloop', 'on']);
    expect(info.prefixes).toEqual([`${namespace}::${created.keyPrefix}cache:`]);
    expect(String(await connection.sendCommand(['CLIENT', 'GETNAME']))).toBe(TRACKING_CONNECTION_NAME);
    expect(created.l1.calls).toEqual(['coherent:true']);
  });

  it('a write elsewhere under the prefix invalidates exactly that storage key, namespace stripped; keys outside it are not reported', async () => {
    const a = await tracker();
    const mark = a.l1.mark;
    const target = keyOf(a, 'target');
    await raw.set(keyOf(a, 'no-namespace'), 'x'); // outside: no namespace
    await raw.set(inRedis(`${a.keyPrefix}redeemed:{x}`), 'x'); // outside: another kind of key
    await raw.set(inRedis(`other-${a.keyPrefix}cache:{x}`), 'x'); // outside: another prefix
    await raw.hSet(inRedis(target), { version: 'v1' });
    // Redis announces in order on the tracking connection: anything reported for the writes above
    // would have arrived before this one.
    await a.l1.until(`invalidate:${target}`, mark);
    expect(a.l1.since(mark)).toEqual([`invalidate:${target}`]);
  });

  it("this process's compare-and-set through writeClient() is not announced back to it; another tracker's is, without its echo marker", async () => {
    const a = await tracker();
    const b = await tracker(a.keyPrefix);
    const [markA, markB] = [a.l1.mark, b.l1.mark];
    const [mine, theirs, unmarked, last] = ['mine', 'theirs', 'unmarked', 'last'].map((name) => keyOf(a, name)) as [
      string,
      string,
      string,
      string,
    ];

    expect(await a.partitions.compareAndSet(mine, '', record('v1'), TTL_MS)).toEqual({ ok: true });
    expect(await a.partitions.compareAndSet(mine, 'v1', record('v2'), TTL_MS)).toEqual({ ok: true });
    expect(await a.partitions.compareAndSet(mine, 'v2', null, TTL_MS)).toEqual({ ok: true });
    expect(await b.partitions.compareAndSet(theirs, '', record('v1'), TTL_MS)).toEqual({ ok: true });
    // The same process writing through the app's client (no tracking connection) is announced.
    const plain = new RedisPartitionStore(a.store as unknown as KeyvRedisLike, TIMEOUT_MS, namespace);
    expect(await plain.compareAndSet(unmarked, '', record('v1'), TTL_MS)).toEqual({ ok: true });
    await raw.hSet(inRedis(last), { version: 'v1' });

    await Promise.all([a.l1.until(`invalidate:${last}`, markA), b.l1.until(`invalidate:${last}`, markB)]);
    expect(a.l1.since(markA)).toEqual([`invalidate:${theirs}`, `invalidate:${unmarked}`, `invalidate:${last}`]);
    expect(b.l1.since(markB)).toEqual([
      `invalidate:${mine}`,
      `invalidate:${mine}`,
      `invalidate:${mine}`,
      `invalidate:${unmarked}`,
      `invalidate:${last}`,
    ]);
  });

  it('a compare-and-set that loses (another version is there) announces nothing and reports the current record', async () => {
    const a = await tracker();
    const key = keyOf(a, 'contended');
    await raw.hSet(inRedis(key), { version: 'theirs', partition: 'partition', cache: '{}' });
    const mark = a.l1.mark;
    expect(await a.partitions.compareAndSet(key, 'stale', record('mine'), TTL_MS)).toEqual({
      ok: false,
      current: { kind: 'found', record: { version: 'theirs', partition: 'partition', cache: '{}' } },
    });
    await raw.hSet(inRedis(keyOf(a, 'last')), { version: 'v1' });
    await a.l1.until(`invalidate:${keyOf(a, 'last')}`, mark);
    expect(a.l1.since(mark)).toEqual([`invalidate:${keyOf(a, 'last')}`]);
  });

  it('compare-and-set answers the same through the tracking connection (RESP3) as through the app client (RESP2)', async () => {
    const a = await tracker();
    const plain = new RedisPartitionStore(a.store as unknown as KeyvRedisLike, TIMEOUT_MS, namespace);
    const states: [string, (key: string) => Promise<unknown>][] = [
      ['absent', async () => undefined],
      ['found', (key) => raw.hSet(key, { version: 'v1', partition: 'partition', cache: '{}' })],
      ['wrong type', (key) => raw.set(key, 'not a hash')],
      ['wrong shape', (key) => raw.hSet(key, { version: 'v1' })],
    ];
    for (const [state, plant] of states) {
      const answers = [];
      for (const store of [a.partitions, plain]) {
        const key = keyOf(a, `${state}-${randomUUID()}`);
        await plant(inRedis(key));
        answers.push([
          await store.compareAndSet(key, 'other', record('v2'), TTL_MS),
          await store.compareAndSet(key, '', record('v2'), TTL_MS),
        ]);
      }
      expect({ state, tracked: answers[0] }).toEqual({ state, tracked: answers[1] });
    }
  });

  it("settled() resolves only once data already in one of this process's sockets has been read, even when called from an I/O callback", async () => {
    const a = await tracker();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    const peer = await accepted;
    try {
      const received: string[] = [];
      const seenBySettled = await new Promise<string[]>((resolve) => {
        client.on('data', (chunk: Buffer) => {
          received.push(chunk.toString());
          if (received.length > 1) return;
          // In the poll phase, as a request handler is: 'late' is in our socket now, not read yet.
          peer.write('late');
          void a.invalidations.settled().then(() => resolve([...received]));
        });
        peer.write('first');
      });
      expect(seenBySettled.join('')).toBe('firstlate');
    } finally {
      client.destroy();
      peer.destroy();
      server.close();
    }
  });

  it('close() is idempotent, turns L1 off, closes the tracking connection and hands out no write client after', async () => {
    const a = await tracker();
    const id = String(await (a.invalidations.writeClient()!.client as unknown as RawClient).sendCommand(['CLIENT', 'ID']));
    expect(await trackingConnectionIds(raw)).toContain(id);
    await Promise.all([a.invalidations.close(), a.invalidations.close()]);
    expect(a.l1.calls).toEqual(['coherent:true', 'coherent:false']);
    expect(a.invalidations.writeClient()).toBeUndefined();
    a.invalidations.start(); // no effect once closed
    expect(await trackingConnectionIds(raw)).not.toContain(id);
  });
});

describe('RedisInvalidations when its connection or the server fails', () => {
  let redis: RedisServer;
  let raw: RawClient;
  let subject: Tracker;

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis.stop();
  });
  beforeEach(async () => {
    raw = await connectedRaw(redis.url);
    subject = await started(newTracker(redis.url));
  });
  afterEach(async () => {
    redis.resume();
    await subject.close();
    raw.destroy();
  });

  it('FLUSHDB flushes L1', async () => {
    const mark = subject.l1.mark;
    await raw.flushDb();
    await subject.l1.until('flush', mark);
    expect(subject.l1.since(mark)).toEqual(['flush']);
  });

  it('CLIENT KILL of the tracking connection: L1 off first (no write client), then on again over a new connection', async () => {
    const [killed] = await trackingConnectionIds(raw);
    expect(await trackingConnectionIds(raw)).toHaveLength(1);
    const mark = subject.l1.mark;
    await raw.sendCommand(['CLIENT', 'KILL', 'ID', killed!]);
    await subject.l1.until('coherent:true', mark);
    expect(subject.l1.since(mark)).toEqual(['coherent:false', 'coherent:true']);
    expect(subject.l1.writerAtChange.slice(-2)).toEqual([false, true]);
    const now = await trackingConnectionIds(raw);
    expect(now).toHaveLength(1);
    expect(now).not.toContain(killed);

    // Tracking works on the new connection.
    const key = partitionStorageKey(subject.keyPrefix, 'after-kill');
    await raw.hSet(`${namespace}::${key}`, { version: 'v1' });
    await subject.l1.until(`invalidate:${key}`, mark);
  });

  it('a paused server (SIGSTOP): L1 off once the heartbeat goes unanswered, on again after SIGCONT', async () => {
    const mark = subject.l1.mark;
    redis.pause();
    await subject.l1.until('coherent:false', mark);
    expect(subject.invalidations.writeClient()).toBeUndefined();
    redis.resume();
    await subject.l1.until('coherent:true', mark);
    expect(subject.l1.since(mark)).toEqual(['coherent:false', 'coherent:true']);
  });

  it('a restarted server: L1 off when it goes, on again once it is back', async () => {
    const mark = subject.l1.mark;
    await redis.kill();
    await subject.l1.until('coherent:false', mark);
    expect(subject.invalidations.writeClient()).toBeUndefined();
    await redis.restart();
    await subject.l1.until('coherent:true', mark);
    expect(subject.l1.since(mark)).toEqual(['coherent:false', 'coherent:true']);
  });

  it('close() while the server is paused still returns (each step has its deadline)', async () => {
    redis.pause();
    await subject.invalidations.close();
    expect(subject.l1.calls.at(-1)).toBe('coherent:false');
  });
});
