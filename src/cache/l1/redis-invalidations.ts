/**
 * Keeps an L1 coherent with Redis through server-assisted client-side caching: a dedicated RESP3
 * connection per Redis (per master of a Cluster) with `CLIENT TRACKING ON BCAST PREFIX
 * <namespace::><keyPrefix>cache: NOLOOP` (./tracking-connection.ts). A partition written by
 * anyone else is announced and dropped from L1; FLUSHALL/FLUSHDB empties it; and whatever may have
 * lost a message (an error, a socket's end, a reconnect, a silent heartbeat, a changed Cluster
 * topology) turns L1 off (`setCoherent(false)`: flushed, bypassed) before anything else happens,
 * until new connections track again.
 *
 * Why BCAST + NOLOOP on one connection:
 * - Not the default (per-key) mode: it announces only keys read on the tracking connection itself.
 *   Reads stay on the app's client, with their deadlines, readiness waits and Cluster routing; and
 *   Redis would keep a table of every key every process read (bounded by tracking-table-max-keys,
 *   whose evictions invalidate at random). BCAST keeps one entry per prefix on the server; each
 *   process hears of every write under the prefix, one small push per write.
 * - Not REDIRECT to a connection subscribed to `__redis__:invalidate`: two connections whose
 *   losses must be watched together (the subscriber's loss shows only as a message on the other),
 *   and NOLOOP would still need writes on the tracking one. With RESP3 the pushes and the commands
 *   share one socket: losing it is one event, and what it answered it answered in order.
 * - NOLOOP: this process's own writes must not be announced back to it, or its L1 would drop the
 *   snapshot it just wrote. Its compare-and-set goes through the tracking connection while it
 *   tracks (`writeClient`). But Redis (7.0 to today) credits a change made inside a Lua script to
 *   the script's own client, not to the caller, so BCAST NOLOOP does not hold back a script's
 *   writes. So the script also sets and deletes an echo marker key, `<key>:l1-echo:<tracker id>`
 *   (src/storage-keys.ts): BCAST lists one event-loop iteration's keys in byte order, so our
 *   write's own invalidation is the key right before our marker, and only that one is dropped
 *   (plain commands on this connection, none today, are held back by NOLOOP). Which writes can
 *   share that iteration: another compare-and-set of the key before ours makes ours fail (the
 *   version changed), and one after ours would need our version, whose reply is sent only at the
 *   end of the iteration. Only a blind writer (DEL by hand, eviction) landing in that same
 *   iteration is hidden, leaving L1 with what this process just wrote. Markers are never
 *   forwarded; others' writes (with their own markers) are.
 * - Redis sends BCAST invalidations before the replies of the same event-loop iteration: once a
 *   writer is told its write landed, the invalidation is already on its way to every tracker (on
 *   one host, in its socket buffer). A reader must still read it before answering from L1: Node
 *   reads sockets only in the event loop's poll phase, and a request can be read in the same poll
 *   as, or before, an invalidation that reached us first (seen under load with 2 processes and
 *   1,000 rounds). So L1 hits wait for `settled()`: the next poll. Across hosts a reader may
 *   still hit for the network's delivery time of that push; a silent socket is found by the
 *   heartbeat (PING within the deadline).
 *
 * Cluster: one connection per master (duplicates of the cluster's node clients, so with its node
 * options); coherent only while all of them track, each master has confirmed its role, and the
 * cluster client still sees the same masters (checked on 'node-connect' and every heartbeat).
 * Any change drops coherence and rebuilds. Compare-and-set then stays on the cluster client
 * (`writeClient` is undefined): this process's own writes are announced back and cost one miss.
 * Sentinel and other clients: never coherent (no L1).
 */
import { randomBytes } from 'node:crypto';
import { withDeadline } from '../../internal/deadline';
import type { KeyvRedisLike, TrackedWriter } from '../redis-partition-store';
import { L1_ECHO_MARKER, l1EchoMarkerKey, redisNamespacePrefix } from '../../storage-keys';
import { addressesOf, appClientOf, confirmMasters, trackingClientsFor } from './app-clients';
import type { AppClient } from './app-clients';
import { TrackingConnection } from './tracking-connection';

export { TRACKING_CONNECTION_NAME } from './app-clients';

/** What RedisInvalidations keeps coherent (an L1Cache). */
export interface L1Sink {
  /**
   * `true` once tracking: reads in flight must then not be stored (they may have been answered
   * before tracking began). `false` when a message may have been missed: flush and bypass.
   */
  setCoherent(coherent: boolean): void;
  /** A storage key changed elsewhere. */
  invalidate(storageKey: string): void;
  /** Everything may have changed. */
  flush(): void;
}

export interface RedisInvalidationsOptions {
  /** Storage-key prefix to track, `<keyPrefix>cache:` (the namespace is added here). */
  trackedPrefix: string;
  /** The Keyv namespace (keys in Redis are `<namespace>::<storage key>`), or undefined. */
  namespace: string | undefined;
  /** Deadline of each tracking command (storeTimeoutMs). */
  timeoutMs: number;
  /** How often each tracking connection is pinged @defaultValue half of timeoutMs, at most 1 s */
  heartbeatMs?: number;
}

/** The connections built together; coherent only while every one of them tracks. */
interface Round {
  connections: TrackingConnection[];
  /** The masters' addresses it was built for (Cluster). */
  masters: string[];
}

const MAX_RETRY_DELAY_MS = 2000;

export class RedisInvalidations {
  readonly #store: KeyvRedisLike;
  readonly #l1: L1Sink;
  readonly #namespacePrefix: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #heartbeatMs: number;
  #app: AppClient | undefined;
  #round: Round | undefined;
  #coherent = false;
  #started = false;
  #closed = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #topologyCheck: NodeJS.Timeout | undefined;
  readonly #unlisten: (() => void)[] = [];
  /** Names this tracker in the echo markers of its writes. */
  readonly #trackerId = randomBytes(6).toString('hex');
  /** The Redis key announced last, held back until the next one says whether it is our own write's echo. */
  #held: string | undefined;
  /** The wait settled() callers of this turn of the event loop share. */
  #barrier: Promise<void> | undefined;
  readonly #writer: TrackedWriter['echoMarker'] = (redisKey) => l1EchoMarkerKey(redisKey, this.#trackerId);

  /**
   * @param store - the @keyv/redis store
   * @param l1 - what to keep coherent
   */
  constructor(store: KeyvRedisLike, l1: L1Sink, options: RedisInvalidationsOptions) {
    this.#store = store;
    this.#l1 = l1;
    this.#namespacePrefix = redisNamespacePrefix(options.namespace);
    this.#prefix = this.#namespacePrefix + options.trackedPrefix;
    this.#timeoutMs = options.timeoutMs;
    this.#heartbeatMs = options.heartbeatMs ?? Math.max(10, Math.min(1000, Math.ceil(options.timeoutMs / 2)));
  }

  /**
   * Starts tracking in the background, once the app's client has connected (it is not connected
   * here). Never rejects: failures keep L1 off and are retried with a backoff.
   */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    void this.#attach();
  }

  /**
   * The tracking connection while coherent, with the echo marker this tracker knows its own writes
   * by (compare-and-set goes through it), else undefined.
   */
  writeClient(): TrackedWriter | undefined {
    const connection = this.#round?.connections[0];
    if (!this.#coherent || this.#app?.kind !== 'standalone' || !connection?.tracking) return undefined;
    return { client: connection.client, echoMarker: this.#writer };
  }

  /**
   * Resolves once this process has handled every invalidation that had reached it when called:
   * after the event loop's next I/O poll. Await it before answering from L1. Node reads a socket
   * only in the poll phase, and one read can carry a message sent after an invalidation that sits
   * unread on the tracking socket (seen under load: a pipe already readable when the invalidation
   * arrived, read with the later message in it). On one host Redis has written the invalidation
   * into our socket before the writer was even answered, so a poll that starts after the later
   * message was read sees it. Callers in the same turn of the event loop share one wait.
   */
  settled(): Promise<void> {
    this.#barrier ??= new Promise((resolve) =>
      setImmediate(() => {
        this.#barrier = undefined; // later callers need a poll that starts after them
        setImmediate(resolve);
      }),
    );
    return this.#barrier;
  }

  /** Stops tracking and closes its connections; L1 is off after. Idempotent, bounded by timeoutMs. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#setIncoherent();
    clearTimeout(this.#retry);
    clearInterval(this.#topologyCheck);
    for (const unlisten of this.#unlisten.splice(0)) unlisten();
    const round = this.#round;
    this.#round = undefined;
    await Promise.all(round?.connections.map((connection) => connection.end()) ?? []);
  }

  async #attach(): Promise<void> {
    let client = (this.#store as { client?: unknown }).client;
    if (client === undefined) {
      try {
        client = await withDeadline(this.#store.getClient(), this.#timeoutMs, 'Redis connect');
      } catch {
        this.#started = false; // the next start() tries again
        return;
      }
    }
    const app = appClientOf(client);
    if (!app || this.#closed) return; // a client that cannot track: L1 stays off
    this.#app = app;
    if (app.kind === 'cluster') {
      const onNode = (): void => this.#checkTopology();
      app.client.on('node-connect', onNode);
      this.#unlisten.push(() => app.client.off('node-connect', onNode));
      this.#topologyCheck = setInterval(onNode, this.#heartbeatMs);
      this.#topologyCheck.unref();
    }
    void this.#build();
  }

  /** Waits for the app's client to connect (or for close()). */
  async #appConnected(app: AppClient): Promise<void> {
    const ready = app.kind === 'cluster' ? app.client.isOpen && app.client.masters.length > 0 : app.client.isOpen !== false;
    if (ready) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        app.client.off?.('connect', done);
        const index = this.#unlisten.indexOf(done);
        if (index !== -1) this.#unlisten.splice(index, 1);
        resolve();
      };
      app.client.once?.('connect', done);
      this.#unlisten.push(done);
    });
  }

  async #build(): Promise<void> {
    const app = this.#app;
    if (this.#closed || this.#round || !app) return;
    await this.#appConnected(app);
    if (this.#closed || this.#round) return;
    const round: Round = { connections: [], masters: app.kind === 'cluster' ? addressesOf(app.client.masters) : [] };
    this.#round = round;
    try {
      const clients = await trackingClientsFor(app, this.#timeoutMs);
      round.connections = clients.map(
        (client) =>
          new TrackingConnection(
            client,
            { invalidate: (key) => this.#invalidate(key), lost: () => this.#lose(round) },
            { prefix: this.#prefix, timeoutMs: this.#timeoutMs, heartbeatMs: this.#heartbeatMs },
          ),
      );
      if (this.#round !== round) throw new Error('lost while building');
      await Promise.all(round.connections.map((connection) => connection.open()));
      if (app.kind === 'cluster') await confirmMasters(app.client, round.connections, round.masters);
    } catch {
      if (this.#round === round) this.#lose(round);
      else for (const connection of round.connections) void connection.end(); // closed or lost meanwhile
      return;
    }
    if (this.#round !== round || this.#closed) return;
    this.#failures = 0;
    this.#coherent = true;
    this.#l1.setCoherent(true);
  }

  #checkTopology(): void {
    const round = this.#round;
    if (round && this.#app?.kind === 'cluster' && addressesOf(this.#app.client.masters).join() !== round.masters.join()) this.#lose(round);
  }

  /**
   * One announced key (node-redis emits a push's keys one by one, synchronously). Each key is held
   * until the next one, or the end of this synchronous run (a microtask), so that the key right
   * before our echo marker, our own write's, is dropped; markers are never forwarded.
   */
  #invalidate(redisKey: string | null): void {
    if (redisKey === null) {
      this.#release();
      this.#l1.flush();
      return;
    }
    if (redisKey.includes(L1_ECHO_MARKER)) {
      if (this.#held !== undefined && redisKey === this.#writer(this.#held)) this.#held = undefined;
      return;
    }
    if (this.#held === undefined) queueMicrotask(() => this.#release());
    else this.#release();
    this.#held = redisKey;
  }

  #release(): void {
    const redisKey = this.#held;
    this.#held = undefined;
    if (redisKey?.startsWith(this.#namespacePrefix)) this.#l1.invalidate(redisKey.slice(this.#namespacePrefix.length));
  }

  /** L1 off first; then the round's connections are closed and a new round is built after a backoff. */
  #lose(round: Round): void {
    if (this.#round !== round) return;
    this.#setIncoherent();
    this.#round = undefined;
    for (const connection of round.connections) void connection.end();
    if (this.#closed) return;
    const delay = this.#failures === 0 ? 0 : Math.min(MAX_RETRY_DELAY_MS, 25 * 2 ** this.#failures);
    this.#failures++;
    this.#retry = setTimeout(() => void this.#build(), delay);
    this.#retry.unref();
  }

  #setIncoherent(): void {
    if (!this.#coherent) return;
    this.#coherent = false;
    this.#l1.setCoherent(false);
  }
}
