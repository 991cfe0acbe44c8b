// The redis-server helper that fault tests use: real processes, killed, paused and restarted.
import { execFileSync } from 'node:child_process';
import { createClient } from '@keyv/redis';
import { RedisServer } from '../../src/testing';

const processState = (pid: number): string =>
  execFileSync('ps', ['-o', 'stat=', '-p', String(pid)])
    .toString()
    .trim();

describe('RedisServer', () => {
  let server: RedisServer;
  beforeEach(async () => {
    server = await RedisServer.start();
  });
  afterEach(() => server.stop());

  it('starts a server with persistence off that answers on its port', async () => {
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      await client.set('k', 'v');
      expect(await client.get('k')).toBe('v');
      expect(await client.configGet('save')).toEqual({ save: '' });
    } finally {
      client.destroy();
    }
  });

  it('pauses with SIGSTOP and resumes with SIGCONT', async () => {
    server.pause();
    expect(processState(server.pid!)).toMatch(/^T/);
    server.resume();
    expect(processState(server.pid!)).not.toMatch(/^T/);
    const client = createClient({ url: server.url });
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    client.destroy();
  });

  it('is killed and restarted on the same port, empty', async () => {
    const client = createClient({ url: server.url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    await client.set('k', 'v');
    const port = server.port;
    await server.kill();
    await expect(client.get('k')).rejects.toThrow();
    await server.restart();
    expect(server.port).toBe(port);
    const again = createClient({ url: server.url });
    await again.connect();
    expect(await again.get('k')).toBeNull();
    again.destroy();
  });
});

it('the test run has a real Redis at REDIS_URL', async () => {
  const client = createClient({ url: process.env.REDIS_URL! });
  await client.connect();
  expect(await client.ping()).toBe('PONG');
  client.destroy();
});
