// The RedisCluster test helper: 3 real masters on loopback, all slots served, cluster mode on,
// persistence off; stop() ends every process. A missing redis-cli is a clear error.
import { createClient } from '@keyv/redis';
import { RedisCluster } from '../../src/testing';

describe('RedisCluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('has 3 cluster-enabled masters with persistence off that together serve every slot', async () => {
    expect(cluster.rootNodes).toEqual(cluster.servers.map((server) => ({ url: `redis://127.0.0.1:${server.port}` })));
    expect(new Set(cluster.servers.map((server) => server.port)).size).toBe(3);
    for (const { url } of cluster.rootNodes) {
      const node = createClient({ url });
      await node.connect();
      try {
        const info = await node.clusterInfo();
        expect(info).toMatch(/^cluster_state:ok\r?$/m);
        expect(info).toMatch(/^cluster_slots_assigned:16384\r?$/m);
        expect(info).toMatch(/^cluster_known_nodes:3\r?$/m);
        expect(await node.configGet('save')).toEqual({ save: '' });
        expect(await node.configGet('appendonly')).toEqual({ appendonly: 'no' });
      } finally {
        node.destroy();
      }
    }
  });

  it('without redis-cli, start() rejects naming the package to install', async () => {
    await expect(RedisCluster.start({ redisCli: '/nonexistent/redis-cli' })).rejects.toThrow(
      /redis-cli was not found \(\/nonexistent\/redis-cli\); install it \(Debian\/Ubuntu: apt-get install redis-tools\)/,
    );
  });

  it('stop() ends every server process and is idempotent', async () => {
    const other = await RedisCluster.start();
    const pids = other.servers.map((server) => server.pid!);
    await other.stop();
    await other.stop();
    expect(other.servers.map((server) => server.pid)).toEqual([undefined, undefined, undefined]);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  }, 60_000);
});
