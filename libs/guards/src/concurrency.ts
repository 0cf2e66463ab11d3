import type { Redis } from 'ioredis';
import type { Degradation } from './degradation.js';

/** The answer of an acquire. */
export type AcquireResult = { acquired: true } | { acquired: false; retryInMs: number };

/** At most `limit` holders of a key at once, on leases that expire so a crashed worker never blocks a key. */
export interface Concurrency {
  /** Takes a slot of `key` for `holder` for `leaseMs`; acquired when Redis is down. */
  acquire(key: string, limit: number, holder: string, leaseMs: number): Promise<AcquireResult>;
  /** Extends the lease of a holder still running. */
  renew(key: string, holder: string, leaseMs: number): Promise<void>;
  /** Frees the holder's slot; a no-op when it has none. */
  release(key: string, holder: string): Promise<void>;
}

/** Least retry hint of a refused acquire. */
export const MIN_RETRY_MS = 50;

// Shared by both scripts: Redis's clock in whole ms, expired leases dropped, and the key kept
// alive exactly as long as its longest lease.
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local function keepUntilLastLease()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now)) end
end
`;

// KEYS[1] sorted set holder -> lease expiry (Redis ms); ARGV[1] limit, ARGV[2] holder, ARGV[3] leaseMs.
// Returns {1, 0} when acquired, else {0, ms until the earliest lease expires, clamped}.
const ACQUIRE_LUA = `${PRELUDE}
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])
-- A holder that already has a slot (a redelivery of the same job) keeps it, with a fresh lease.
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
  keepUntilLastLease()
  return {1, 0}
end
-- The earliest lease end is the latest a slot frees up (a release may come sooner). Never below
-- the floor, even for leases shorter than it, so refused callers cannot spin on Redis.
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local retry = tonumber(first[2]) - now
return {0, math.max(${MIN_RETRY_MS}, math.min(lease, retry))}
`;

// KEYS[1] as above; ARGV[1] holder, ARGV[2] leaseMs. Returns 1 when the holder still had its lease.
// A holder whose lease is gone (Redis restarted, or the lease ran out during a stall) is added
// back even above the limit: it is running, and counting it makes others wait until it is done.
const RENEW_LUA = `${PRELUDE}
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
keepUntilLastLease()
if held then return 1 end
return 0
`;

const ACQUIRE = 'redriveAcquireLease';
const RENEW = 'redriveRenewLease';

interface ConcurrencyCommands {
  [ACQUIRE](key: string, limit: number, holder: string, leaseMs: number): Promise<[number, number]>;
  [RENEW](key: string, holder: string, leaseMs: number): Promise<number>;
}

export function createConcurrency(redis: Redis, keyPrefix: string, degradation: Degradation): Concurrency {
  redis.defineCommand(ACQUIRE, { numberOfKeys: 1, lua: ACQUIRE_LUA });
  redis.defineCommand(RENEW, { numberOfKeys: 1, lua: RENEW_LUA });
  const commands = redis as Redis & ConcurrencyCommands;
  const keyOf = (key: string) => `${keyPrefix}:cc:${key}`;
  return {
    async acquire(key, limit, holder, leaseMs) {
      if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer >= 1, got ${limit}`);
      const lease = leaseMsOf(leaseMs);
      return degradation.run<AcquireResult>(
        'concurrency',
        'acquire',
        async () => {
          const [acquired, retryInMs] = await commands[ACQUIRE](keyOf(key), limit, holder, lease);
          return acquired === 1 ? { acquired: true } : { acquired: false, retryInMs };
        },
        { acquired: true },
      );
    },
    async renew(key, holder, leaseMs) {
      const lease = leaseMsOf(leaseMs);
      await degradation.run(
        'concurrency',
        'renew',
        async () => {
          await commands[RENEW](keyOf(key), holder, lease);
        },
        undefined,
      );
    },
    async release(key, holder) {
      // One ZREM is atomic on its own; an expired lease left behind is dropped by the next script.
      await degradation.run(
        'concurrency',
        'release',
        async () => {
          await redis.zrem(keyOf(key), holder);
        },
        undefined,
      );
    },
  };
}

function leaseMsOf(leaseMs: number): number {
  if (!(leaseMs >= 1) || !Number.isFinite(leaseMs)) throw new RangeError(`leaseMs must be >= 1, got ${leaseMs}`);
  return Math.ceil(leaseMs);
}
