import type { Redis } from 'ioredis';
import type { Degradation } from './degradation.js';

/** The answer of a token bucket. */
export type TakeResult = { allowed: true } | { allowed: false; retryInMs: number };

/** Shared token buckets: `ratePerSec` tokens per second, holding at most `burst`. */
export interface RateLimit {
  /** { allowed: true } or { allowed: false, retryInMs } (time until a token is available); allowed when Redis is down. */
  take(bucket: string, ratePerSec: number, burst: number): Promise<TakeResult>;
}

// KEYS[1] bucket hash {tokens, ts}; ARGV[1] tokens per second; ARGV[2] burst.
// Returns {1, 0} when a token was taken, else {0, ms until one token is there}.
// Time is Redis's own (TIME), so replicas on hosts with different clocks share one refill rate.
// TIME before a write needs effects replication, the default since Redis 5.
const TAKE_TOKEN_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
else
  -- The clock went back (failover to a replica): no refill, restart from the new clock.
  tokens = math.min(burst, tokens)
end
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
-- Once the bucket would be full again its state equals a missing key: let it go then.
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) * 1000 / rate)))
return {allowed, retry}
`;

const TAKE_TOKEN = 'redriveTakeToken';

interface RateLimitCommands {
  [TAKE_TOKEN](key: string, ratePerSec: number, burst: number): Promise<[number, number]>;
}

export function createRateLimit(redis: Redis, keyPrefix: string, degradation: Degradation): RateLimit {
  redis.defineCommand(TAKE_TOKEN, { numberOfKeys: 1, lua: TAKE_TOKEN_LUA });
  const commands = redis as Redis & RateLimitCommands;
  return {
    async take(bucket, ratePerSec, burst) {
      if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
        throw new RangeError(`ratePerSec must be a positive number, got ${ratePerSec}`);
      }
      if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`burst must be at least 1, got ${burst}`);
      return degradation.run<TakeResult>(
        'rate_limit',
        'take',
        async () => {
          const [allowed, retryInMs] = await commands[TAKE_TOKEN](`${keyPrefix}:rl:${bucket}`, ratePerSec, burst);
          return allowed === 1 ? { allowed: true } : { allowed: false, retryInMs };
        },
        { allowed: true },
      );
    },
  };
}
