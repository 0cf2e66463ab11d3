export { createRedisClient, redisReady } from './client.js';
export type { AcquireResult, Concurrency } from './concurrency.js';
export type { RunStart, Runs } from './runs.js';
export { DEGRADED_METRIC, degradedCounter, type Feature } from './degradation.js';
export { createGuards, type Guards, type GuardsOptions } from './guards.js';
export type { RateLimit, TakeResult } from './rate-limit.js';
