// The PostgreSQL helper: a throwaway server that the Keyv Postgres adapter can use, stopped cleanly (twice).
import { connect } from 'node:net';
import KeyvPostgres from '@keyv/postgres';
import Keyv from 'keyv';
import { PostgresServer } from '../../src/testing';

jest.setTimeout(30_000);

/** Resolves with whether something accepts TCP connections on 127.0.0.1:port. */
const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('PostgresServer', () => {
  it('starts a server that Keyv can store to, and stops it (twice, harmlessly)', async () => {
    const server = await PostgresServer.start();
    try {
      expect(server.url).toBe(`postgresql://postgres@127.0.0.1:${server.port}/postgres`);
      const keyv = new Keyv({ store: new KeyvPostgres({ uri: server.url }) });
      try {
        await keyv.set('k', { v: 1 });
        expect(await keyv.get('k')).toEqual({ v: 1 });
      } finally {
        await keyv.disconnect();
      }
    } finally {
      await server.stop();
    }
    expect(await accepts(server.port)).toBe(false);
    await expect(server.stop()).resolves.toBeUndefined();
  });

  it('kill() stops it at once and restart() brings it back on the same port with its data', async () => {
    const server = await PostgresServer.start();
    // A pool per side of the restart: @keyv/postgres's pool has no 'error' listener for its idle clients.
    const before = new Keyv({ store: new KeyvPostgres({ uri: server.url }) });
    try {
      await before.set('kept', 'across the restart');
      await before.disconnect();
      await server.kill();
      expect(await accepts(server.port)).toBe(false);
      await server.restart();
      expect(await accepts(server.port)).toBe(true);
      const after = new Keyv({ store: new KeyvPostgres({ uri: server.url }) });
      try {
        expect(await after.get('kept')).toBe('across the restart');
      } finally {
        await after.disconnect();
      }
    } finally {
      await server.stop();
    }
  });
});
