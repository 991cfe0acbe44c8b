// One app instance in its own OS process for `npm start -- --redis <url>` (or `--postgres <url>`):
// our DistributedClientApplication on Redis (token cache and lock store), or on PostgreSQL with no
// Redis at all, and a plain ConfidentialClientApplication for comparison. Driven by JSON lines on stdin.
import { createInterface } from 'node:readline';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import KeyvPostgres from '@keyv/postgres';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, PostgresLockStore, RedisLockStore } from '../src';
import { attempt } from './attempt';

const env = (name: string): string => process.env[name] ?? '';
const msalConfig = {
  auth: {
    clientId: env('DEMO_CLIENT_ID'),
    clientSecret: env('DEMO_CLIENT_SECRET'),
    authority: env('DEMO_AUTHORITY'),
    knownAuthorities: [env('DEMO_HOST')],
  },
};
const redisUrl = env('DEMO_REDIS_URL');
const postgresUrl = env('DEMO_POSTGRES_URL');
const cache = new DistributedTokenCache({
  ...(postgresUrl
    ? {
        store: new Keyv({ store: new KeyvPostgres({ uri: postgresUrl }) }),
        lockStore: new PostgresLockStore({ connectionString: postgresUrl }),
      }
    : {
        store: new Keyv({ store: new KeyvRedis(redisUrl) }),
        lockStore: new RedisLockStore({ url: redisUrl, keyPrefix: env('DEMO_KEY_PREFIX') }),
      }),
  keyPrefix: env('DEMO_KEY_PREFIX'),
});
const ours = new DistributedClientApplication(msalConfig, { cache });
const plain = new ConfidentialClientApplication(msalConfig);

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const message = JSON.parse(line) as { id: number; op: string; side: 'ours' | 'plain'; request: never };
    const app = message.side === 'ours' ? ours : plain;
    const work =
      message.op === 'authCodeUrl'
        ? app.getAuthCodeUrl({ ...(message.request as object), codeChallengeMethod: 'S256' } as never)
        : attempt(app, message.request);
    void work.then((value) => process.stdout.write(`${JSON.stringify({ id: message.id, value })}\n`));
  })
  .on('close', () => {
    void cache.close().then(() => process.exit(0));
  });
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
