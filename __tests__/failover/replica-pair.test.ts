// The failover test infrastructure itself: a write the primary acknowledged after the replication
// link was cut is really gone after the failover, an earlier one survives, and clients of the one
// endpoint reach the new primary after their connections were reset.
import { createClient } from '@keyv/redis';
import { RedisReplicaPair } from '../../src/testing';

describe('RedisReplicaPair and TcpProxy', () => {
  let pair: RedisReplicaPair;

  beforeEach(async () => {
    pair = await RedisReplicaPair.start();
  });
  afterEach(async () => {
    await pair.stop();
  });

  it('a write acknowledged by the primary after the link was cut is lost in the failover; a replicated one survives', async () => {
    const client = createClient({ url: pair.url });
    const errors: Error[] = [];
    client.on('error', (error: Error) => errors.push(error));
    await client.connect();
    await client.set('before-cut', '1');
    expect(await client.sendCommand(['WAIT', '1', '5000'])).toBe(1); // replicated
    pair.cutReplication();
    await client.set('after-cut', '1');
    expect(await client.get('after-cut')).toBe('1'); // acknowledged by the primary
    expect(await client.sendCommand(['WAIT', '1', '100'])).toBe(0); // and by no replica

    const reconnected = new Promise<void>((resolve) => client.once('ready', () => resolve()));
    await pair.failover();
    await reconnected; // node-redis reconnects through the same endpoint, now to the new primary
    expect(await client.get('before-cut')).toBe('1');
    expect(await client.get('after-cut')).toBeNull();
    expect(await client.sendCommand(['INFO', 'replication'])).toMatch(/role:master/);
    expect(errors.map((error) => error.message)).toContain('read ECONNRESET'); // the endpoint reset the connection
    client.destroy();
  });
});
