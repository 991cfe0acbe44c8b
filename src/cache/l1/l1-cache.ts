/**
 * The in-process L1: decoded partition snapshots kept in front of the store, bounded by entries
 * and by bytes (least recently used dropped first), and the rules that keep it from ever serving
 * what may be stale. Pure bookkeeping: what keeps it coherent (Redis client-side tracking) calls
 * {@link L1Cache.setCoherent}, {@link L1Cache.invalidate} and {@link L1Cache.flush}; the partition
 * repository reads and fills it under tickets.
 *
 * The rules:
 * - Until the invalidation source says it is tracking (`setCoherent(true)`), `get` misses and
 *   `fill` stores nothing. Losing tracking (`setCoherent(false)`) empties it: an invalidation may
 *   have been missed.
 * - A value read or written from the store is stored only under a ticket taken before the store
 *   call ({@link L1Cache.begin}), and only if nothing that could make it stale happened while the
 *   ticket was in flight: no invalidation of its key, no flush, no change of coherence, and for a
 *   read no write of this process to the key (this process's own writes are not announced to it,
 *   so a read that may have been answered before the write landed never stores its older value).
 * - A write whose outcome is not stored (it failed, lost a compare-and-set, or was spoiled) drops
 *   the key's entry: the store may now hold something newer that nobody will announce.
 *
 * LruMap (src/internal) bounds only by count; this one weighs entries by bytes, and needs delete
 * and clear, so it keeps its own Map (insertion order: least recently used first).
 */

export interface L1Bounds {
  /** At most this many entries. */
  maxEntries: number;
  /** At most this many bytes, as weighed by the caller of {@link L1Cache.fill}. */
  maxBytes: number;
}

/** Counters since construction, and the current size. */
export interface L1Stats {
  /** `get` calls answered from L1. */
  hits: number;
  /** `get` calls not answered (absent, or L1 not coherent). */
  misses: number;
  /** Entries dropped to make room (entries or bytes bound). */
  evictions: number;
  /** `invalidate` calls that dropped an entry or spoiled a ticket in flight. */
  invalidations: number;
  /** Flushes: `flush` calls, and losses of coherence. */
  flushes: number;
  /** Entries held now. */
  entries: number;
  /** Bytes held now. */
  bytes: number;
}

/** What a store call for one key holds while in flight; ended by `fill` or `abandon`. */
export interface L1Ticket {
  readonly key: string;
}

/** Whether a ticket is for a read (may store what it read) or a write of this process (replaces the entry). */
export type L1Purpose = 'read' | 'write';

class Ticket implements L1Ticket {
  ended = false;

  constructor(
    readonly key: string,
    readonly purpose: L1Purpose,
    /** The cache's epoch at `begin` (flushes and coherence changes move it). */
    readonly epoch: number,
    /** The key's generation at `begin` (invalidations and writes of the key move it). */
    readonly generation: number,
    /** A read begun while a write of its key was in flight: it may be answered before that write lands. */
    readonly spoiledAtBegin: boolean,
  ) {}
}

/** The tickets in flight for one key; removed when the last one ends. */
interface Flight {
  tickets: number;
  writes: number;
  generation: number;
}

interface Entry<V> {
  value: V;
  bytes: number;
}

export class L1Cache<V> {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  /** Insertion order is recency: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry<V>>();
  readonly #flights = new Map<string, Flight>();
  #bytes = 0;
  #coherent = false;
  #epoch = 0;
  readonly #counters = { hits: 0, misses: 0, evictions: 0, invalidations: 0, flushes: 0 };

  constructor(options: L1Bounds) {
    this.#maxEntries = options.maxEntries;
    this.#maxBytes = options.maxBytes;
  }

  /** Its bounds, as constructed. */
  get bounds(): L1Bounds {
    return { maxEntries: this.#maxEntries, maxBytes: this.#maxBytes };
  }

  /** Whether L1 is in use: the invalidation source is tracking. */
  get coherent(): boolean {
    return this.#coherent;
  }

  /**
   * `true` once the invalidation source is tracking; `false` when it may have missed an
   * invalidation (empties L1). Either change spoils every ticket in flight: a read begun before
   * tracking started may have been answered before a write nobody announced.
   */
  setCoherent(coherent: boolean): void {
    if (coherent === this.#coherent) return;
    if (coherent) {
      this.#epoch++;
      this.#coherent = true;
    } else {
      this.#coherent = false;
      this.flush();
    }
  }

  /** The entry for `key` (now the most recently used), or `undefined`: absent, or L1 not coherent. */
  get(key: string): V | undefined {
    const entry = this.#coherent ? this.#entries.get(key) : undefined;
    if (entry === undefined) {
      this.#counters.misses++;
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.#counters.hits++;
    return entry.value;
  }

  /**
   * Takes a ticket before reading (or writing) `key` in the store. A write spoils every ticket
   * in flight for the key, and reads begun while it is in flight are spoiled from the start.
   */
  begin(key: string, purpose: L1Purpose = 'read'): L1Ticket {
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      flight = { tickets: 0, writes: 0, generation: 0 };
      this.#flights.set(key, flight);
    }
    if (purpose === 'write') {
      flight.generation++;
      flight.writes++;
    }
    flight.tickets++;
    return new Ticket(key, purpose, this.#epoch, flight.generation, purpose === 'read' && flight.writes > 0);
  }

  /**
   * Stores `value` (weighing `bytes`) as read or written under `ticket`, if nothing could have
   * made it stale since `begin` and L1 is coherent. Always ends the ticket.
   *
   * @returns whether it was stored
   */
  fill(ticket: L1Ticket, value: V, bytes: number): boolean {
    const { own, fresh } = this.#end(ticket);
    if (!own) return false;
    if (!fresh || bytes > this.#maxBytes) {
      if (own.purpose === 'write') this.#remove(own.key);
      return false;
    }
    this.#remove(own.key);
    while (this.#entries.size > 0 && (this.#entries.size >= this.#maxEntries || this.#bytes + bytes > this.#maxBytes)) {
      this.#remove(this.#entries.keys().next().value!);
      this.#counters.evictions++;
    }
    this.#entries.set(own.key, { value, bytes });
    this.#bytes += bytes;
    return true;
  }

  /** Ends a ticket without storing anything; an unfinished write also drops the key's entry. */
  abandon(ticket: L1Ticket): void {
    const { own } = this.#end(ticket);
    if (own?.purpose === 'write') this.#remove(own.key);
  }

  /**
   * Drops `key`'s entry and spoils its tickets in flight (another writer changed it).
   *
   * @returns whether anything was dropped or spoiled
   */
  invalidate(key: string): boolean {
    const removed = this.#remove(key);
    const flight = this.#flights.get(key);
    if (flight) flight.generation++;
    const effective = removed || flight !== undefined;
    if (effective) this.#counters.invalidations++;
    return effective;
  }

  /** Drops every entry and spoils every ticket in flight. */
  flush(): void {
    this.#epoch++;
    this.#entries.clear();
    this.#bytes = 0;
    this.#counters.flushes++;
  }

  /** Counters and current size (a copy). */
  get stats(): L1Stats {
    return { ...this.#counters, entries: this.#entries.size, bytes: this.#bytes };
  }

  /** Ends `ticket` (once): whether it was one of ours still in flight, and whether its value may be stored. */
  #end(ticket: L1Ticket): { own: Ticket | undefined; fresh: boolean } {
    const flight = this.#flights.get(ticket.key);
    if (!(ticket instanceof Ticket) || ticket.ended || flight === undefined) return { own: undefined, fresh: false };
    ticket.ended = true;
    const fresh = this.#coherent && ticket.epoch === this.#epoch && ticket.generation === flight.generation && !ticket.spoiledAtBegin;
    flight.tickets--;
    if (ticket.purpose === 'write') flight.writes--;
    if (flight.tickets === 0) this.#flights.delete(ticket.key);
    return { own: ticket, fresh };
  }

  #remove(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    return true;
  }
}
