/**
 * The lock store's Lua scripts, each one atomic step of the protocol, with its keys and arguments
 * named at the top and a typed reply. Owner values are `<token>:<fence>`; outcomes are stored as
 * `<fence>:<outcome>`. Every script that deletes a lock checks the owner first, and every script
 * that frees or decides a key publishes the key on the channel, so waiters wake. acquire, claim
 * and complete are idempotent: a retry after a lost reply finds its own token or outcome.
 */
import { defineScript } from '../../internal/redis-script';
import type { ReplicationReport } from './replica-acks';

// The durable scripts (claim, complete) end their ARGV with `report`: '1' to read the primary's
// replication with the write, for replicaAcks 'auto'. Put after the script's named locals.
const REPLICATION = `
local function replication()
  if report ~= '1' then return '', '0' end
  local info = redis.call('INFO', 'replication')
  return string.match(info, 'master_replid:(%w+)') or '', string.match(info, 'connected_slaves:(%d+)') or '0'
end`;

/** The lease's fence, or 0 when another owner holds the lock. */
export const acquire = defineScript({
  keys: ['lock', 'fence'],
  args: ['token', 'leaseMs', 'fenceTtlMs'],
  lua: `
local lockKey = KEYS[1]
local fenceKey = KEYS[2]
local token = ARGV[1]
local leaseMs = ARGV[2]
local fenceTtlMs = ARGV[3]
local held = redis.call('GET', lockKey)
if held and string.sub(held, 1, #token + 1) == token .. ':' then return tonumber(string.sub(held, #token + 2)) end
if held then return 0 end
local fence = redis.call('INCR', fenceKey)
redis.call('PEXPIRE', fenceKey, fenceTtlMs)
redis.call('SET', lockKey, token .. ':' .. fence, 'PX', leaseMs)
return fence
`,
  transformReply: (reply): number => Number(reply),
});

/** What a claim found (see `Claim`); a new claim also reports the primary's replication. */
export type ClaimReply =
  | { state: 'claimed'; fence: number; report: ReplicationReport }
  | { state: 'done'; outcome: string }
  | { state: 'busy' }
  | { state: 'abandoned' };

/** Claims the work: the lock (with the lease) and the attempt marker, unless an outcome or another claim exists. */
export const claim = defineScript({
  keys: ['lock', 'attempt', 'outcome', 'fence'],
  args: ['token', 'leaseMs', 'recordTtlMs', 'report'],
  lua: `
local lockKey = KEYS[1]
local attemptKey = KEYS[2]
local outcomeKey = KEYS[3]
local fenceKey = KEYS[4]
local token = ARGV[1]
local leaseMs = ARGV[2]
local recordTtlMs = ARGV[3]
local report = ARGV[4]
${REPLICATION}
local held = redis.call('GET', lockKey)
if held and string.sub(held, 1, #token + 1) == token .. ':' then
  redis.call('PEXPIRE', lockKey, leaseMs)
  return {'claimed', string.sub(held, #token + 2), replication()}
end
local outcome = redis.call('GET', outcomeKey)
if outcome then return {'done', outcome} end
if redis.call('EXISTS', lockKey) == 1 then return {'busy'} end
if redis.call('EXISTS', attemptKey) == 1 then return {'abandoned'} end
local fence = redis.call('INCR', fenceKey)
redis.call('PEXPIRE', fenceKey, recordTtlMs * 2)
redis.call('SET', lockKey, token .. ':' .. fence, 'PX', leaseMs)
redis.call('SET', attemptKey, fence, 'PX', recordTtlMs)
return {'claimed', tostring(fence), replication()}
`,
  transformReply: (reply): ClaimReply => {
    const [state, value] = reply as string[];
    switch (state) {
      case 'done':
        return { state: 'done', outcome: stripFence(value!) };
      case 'busy':
      case 'abandoned':
        return { state };
      default:
        return { state: 'claimed', fence: Number(value), report: replicationReport(reply as unknown[], 2) };
    }
  },
});

/** Extends the lease if `owner` still holds it. */
export const extend = defineScript({
  keys: ['lock'],
  args: ['owner', 'leaseMs'],
  lua: `
local lockKey = KEYS[1]
local owner = ARGV[1]
local leaseMs = ARGV[2]
if redis.call('GET', lockKey) == owner then return redis.call('PEXPIRE', lockKey, leaseMs) end
return 0
`,
  transformReply: (reply): boolean => Number(reply) === 1,
});

/** Deletes the lock if `owner` still holds it, and publishes `message` (the key). */
export const release = defineScript({
  keys: ['lock'],
  args: ['owner', 'channel', 'message'],
  lua: `
local lockKey = KEYS[1]
local owner = ARGV[1]
local channel = ARGV[2]
local message = ARGV[3]
if redis.call('GET', lockKey) ~= owner then return 0 end
redis.call('DEL', lockKey)
redis.call('PUBLISH', channel, message)
return 1
`,
  transformReply: (reply): boolean => Number(reply) === 1,
});

/**
 * Gives back a claim whose work never started (the code was not sent), or that the replicas did
 * not acknowledge: deletes the lock and this claim's attempt marker if `owner` still holds it.
 */
export const withdraw = defineScript({
  keys: ['lock', 'attempt'],
  args: ['owner', 'fence', 'channel', 'message'],
  lua: `
local lockKey = KEYS[1]
local attemptKey = KEYS[2]
local owner = ARGV[1]
local fence = ARGV[2]
local channel = ARGV[3]
local message = ARGV[4]
if redis.call('GET', lockKey) ~= owner then return 0 end
redis.call('DEL', lockKey)
if redis.call('GET', attemptKey) == fence then redis.call('DEL', attemptKey) end
redis.call('PUBLISH', channel, message)
return 1
`,
  transformReply: (reply): boolean => Number(reply) === 1,
});

/** Whether the outcome is recorded (refused under a higher fence's), and the primary's replication. */
export interface CompleteReply {
  recorded: boolean;
  report: ReplicationReport;
}

/** Records the outcome unless one with a fence as high exists, deletes the lock if `owner` holds it, publishes. */
export const complete = defineScript({
  keys: ['lock', 'outcome'],
  args: ['owner', 'fence', 'outcome', 'recordTtlMs', 'channel', 'message', 'report'],
  lua: `
local lockKey = KEYS[1]
local outcomeKey = KEYS[2]
local owner = ARGV[1]
local fence = ARGV[2]
local outcome = ARGV[3]
local recordTtlMs = ARGV[4]
local channel = ARGV[5]
local message = ARGV[6]
local report = ARGV[7]
${REPLICATION}
local current = redis.call('GET', outcomeKey)
if current == fence .. ':' .. outcome then
  if redis.call('GET', lockKey) == owner then redis.call('DEL', lockKey) end
  return {1, replication()}
end
if current then
  local currentFence = tonumber(string.match(current, '^(%d+):'))
  if currentFence and currentFence >= tonumber(fence) then return {0, replication()} end
end
redis.call('SET', outcomeKey, fence .. ':' .. outcome, 'PX', recordTtlMs)
if redis.call('GET', lockKey) == owner then redis.call('DEL', lockKey) end
redis.call('PUBLISH', channel, message)
return {1, replication()}
`,
  transformReply: (reply): CompleteReply => {
    const recorded = reply as unknown[];
    return { recorded: Number(recorded[0]) === 1, report: replicationReport(recorded, 1) };
  },
});

/** Records `outcome` for abandoned work unless an outcome exists; the outcome now recorded. */
export const settle = defineScript({
  keys: ['outcome', 'fence'],
  args: ['outcome', 'recordTtlMs', 'channel', 'message'],
  lua: `
local outcomeKey = KEYS[1]
local fenceKey = KEYS[2]
local outcome = ARGV[1]
local recordTtlMs = ARGV[2]
local channel = ARGV[3]
local message = ARGV[4]
local current = redis.call('GET', outcomeKey)
if current then return current end
local fence = redis.call('INCR', fenceKey)
redis.call('PEXPIRE', fenceKey, recordTtlMs * 2)
local value = fence .. ':' .. outcome
redis.call('SET', outcomeKey, value, 'PX', recordTtlMs)
redis.call('PUBLISH', channel, message)
return value
`,
  transformReply: (reply): string => stripFence(String(reply)),
});

/** The replication part of a durable script's reply, from `index` on. */
function replicationReport(reply: unknown[], index: number): ReplicationReport {
  return { replid: String(reply[index] ?? ''), connectedReplicas: Number(reply[index + 1] ?? 0) };
}

/** Outcomes are stored as `<fence>:<outcome>`. */
function stripFence(stored: string): string {
  return stored.slice(stored.indexOf(':') + 1);
}
