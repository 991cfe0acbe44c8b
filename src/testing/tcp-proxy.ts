/**
 * A small TCP proxy for fault tests: one stable endpoint in front of a server that can be
 * switched to another target (a failover behind a DNS name or a cloud load balancer), have its
 * connections reset (what clients see during a failover), or be paused (a network partition:
 * connections stay open and bytes are held, not lost, until it resumes).
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';

interface Pipe {
  client: Socket;
  server: Socket;
  /** Bytes held while paused, in order, per direction. */
  held: { toServer: Buffer[]; toClient: Buffer[] };
}

/**
 * A TCP proxy on 127.0.0.1 that forwards every connection to a target port on 127.0.0.1.
 *
 * @example
 * ```ts
 * const primary = await RedisServer.start();
 * const replica = await RedisServer.start();
 * const proxy = await TcpProxy.start({ targetPort: primary.port });
 * const lockStore = new RedisLockStore({ url: proxy.url });
 * proxy.pause();            // nothing passes, connections stay open
 * proxy.resume();           // what was held is delivered
 * proxy.switchTo(replica.port);
 * proxy.resetConnections(); // clients reconnect, now to the replica
 * await proxy.close();
 * ```
 */
export class TcpProxy {
  readonly #pipes = new Set<Pipe>();
  #paused: 'both' | 'replies' | undefined;
  readonly #onHeld = new Set<(direction: 'requests' | 'replies') => void>();

  readonly #server: Server;
  #target: number;
  private constructor(
    server: Server,
    /** The port it listens on, on 127.0.0.1. */
    readonly port: number,
    target: number,
  ) {
    this.#server = server;
    this.#target = target;
  }

  /**
   * Starts listening on a free loopback port (or `port`).
   *
   * @param options.targetPort - where connections go, on 127.0.0.1
   * @param options.port - a fixed port to listen on @defaultValue a free one
   */
  static async start(options: { targetPort: number; port?: number }): Promise<TcpProxy> {
    const pipes: { proxy?: TcpProxy } = {};
    const server = createServer((client) => pipes.proxy!.#accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    const proxy = new TcpProxy(server, (server.address() as { port: number }).port, options.targetPort);
    pipes.proxy = proxy;
    return proxy;
  }

  /** `redis://127.0.0.1:<port>`, for a Redis behind the proxy. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The port connections go to now. */
  get targetPort(): number {
    return this.#target;
  }

  /** Open connections through the proxy. */
  get connectionCount(): number {
    return this.#pipes.size;
  }

  /** New connections go to `targetPort`; open ones stay where they are (see {@link resetConnections}). */
  switchTo(targetPort: number): void {
    this.#target = targetPort;
  }

  /** Destroys every open connection on both sides, as a failover or a load balancer does. */
  resetConnections(): void {
    for (const pipe of [...this.#pipes]) this.#drop(pipe);
  }

  /**
   * Holds bytes (open and new connections) until {@link resume}: in both directions, or only the
   * server's replies (requests reach the server and run; their answers are held, as when a
   * connection dies after the server did the work).
   */
  pause(direction: 'both' | 'replies' = 'both'): void {
    this.#paused = direction;
  }

  /** Resolves when bytes in `direction` are held next (after {@link pause}). */
  whenHolding(direction: 'requests' | 'replies'): Promise<void> {
    return new Promise((resolve) => {
      const listener = (held: 'requests' | 'replies'): void => {
        if (held !== direction) return;
        this.#onHeld.delete(listener);
        resolve();
      };
      this.#onHeld.add(listener);
    });
  }

  /** Delivers what was held, in order, and forwards again. */
  resume(): void {
    this.#paused = undefined;
    for (const pipe of this.#pipes) {
      for (const chunk of pipe.held.toServer.splice(0)) pipe.server.write(chunk);
      for (const chunk of pipe.held.toClient.splice(0)) pipe.client.write(chunk);
    }
  }

  /** Stops listening and destroys every open connection. */
  async close(): Promise<void> {
    this.resetConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const server = connect({ host: '127.0.0.1', port: this.#target });
    const pipe: Pipe = { client, server, held: { toServer: [], toClient: [] } };
    this.#pipes.add(pipe);
    // No Nagle delay, as Redis and its clients set: small replies (a replica's ACK) pass at once.
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      if (this.#paused !== 'both') return server.write(chunk);
      pipe.held.toServer.push(chunk);
      for (const listener of [...this.#onHeld]) listener('requests');
    });
    server.on('data', (chunk: Buffer) => {
      if (this.#paused === undefined) return client.write(chunk);
      pipe.held.toClient.push(chunk);
      for (const listener of [...this.#onHeld]) listener('replies');
    });
    // Either side ending or failing ends both: the other side sees a reset connection.
    for (const socket of [client, server]) {
      socket.on('error', () => this.#drop(pipe));
      socket.on('close', () => this.#drop(pipe));
    }
  }

  #drop(pipe: Pipe): void {
    if (!this.#pipes.delete(pipe)) return;
    // RST rather than FIN, as a failed-over node or a load balancer dropping the flow sends.
    resetOrDestroy(pipe.client);
    resetOrDestroy(pipe.server);
  }
}

/**
 * RST for a connected socket; a plain destroy for one still connecting or half closed: on Node 20,
 * resetAndDestroy() of such a socket can leave libuv polling it forever (the process never exits,
 * one core busy), which a failover's reset of connections to a killed server reproduced.
 */
function resetOrDestroy(socket: Socket): void {
  if (socket.readyState === 'open') socket.resetAndDestroy();
  else socket.destroy();
}
