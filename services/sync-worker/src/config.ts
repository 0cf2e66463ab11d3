import {
  duration,
  freezeConfig,
  handoffEnv,
  int,
  json,
  list,
  MAX_TIMER_MS,
  optStr,
  parseEnv,
  port,
  str,
  type Env,
  serviceEnv,
  serviceSettingsFrom,
} from '@redrive/config';
import { JOB_TYPE_PATTERN } from '@redrive/messaging';
import { ERROR_CLASSES } from '@redrive/retry-policy';
import { z } from 'zod';
import { httpHandlerEnv, httpHandlerSettingsFrom } from './handlers/http.js';

const classPolicy = z
  .object({
    retryable: z.boolean(),
    maxRetries: z.number().int().min(0).max(1000),
    baseMs: z.number().min(0),
    multiplier: z.number().min(1),
    maxMs: z.number().min(0),
    jitter: z.number().min(0).max(1),
  })
  .partial()
  .strict();
const classOverrides = z.partialRecord(z.enum(ERROR_CLASSES), classPolicy);
const rateLimit = z
  .object({ perSecond: z.number().positive(), burst: z.number().int().positive().optional() })
  .strict();

export const workerEnv = z.object({
  ...serviceEnv,
  WORKER_HOST: str('0.0.0.0').describe('address of the health and metrics server'),
  WORKER_PORT: port(9090).describe('port of the health and metrics server'),
  /** Jobs run at once by this process, across all types and lanes. */
  WORKER_CONCURRENCY: int(16, { min: 1, max: 10_000 }).describe('jobs run at once, across types and lanes'),
  /** Messages each consumer may hold before a slot is free (0: the concurrency). */
  WORKER_PREFETCH: int(0, { min: 0, max: 10_000 }).describe(
    'messages each consumer may hold while waiting for a free slot (`0`: the concurrency)',
  ),
  /** Every n-th free slot goes to the lowest waiting lane, so low priority never starves. */
  WORKER_LOW_LANE_EVERY: int(10, { min: 2, max: 1_000 }).describe(
    'under contention, every n-th free slot goes to the lowest waiting lane, so low priority never starves',
  ),
  /** Modules that export handlers: paths (relative to the working directory) or package names. */
  WORKER_HANDLERS: list([]).describe(
    'handler modules: comma-separated paths (relative to the working directory) or package names',
  ),
  /** Serve only these job types (default: every type with a handler). */
  WORKER_TYPES: list([], { re: JOB_TYPE_PATTERN, describe: 'job types ([a-z0-9][a-z0-9_-]*)' }).describe(
    'serve only these job types (default: every type with a handler)',
  ),
  WORKER_ACK_WAIT: duration('30s', { min: 1_000, max: 3_600_000 }).describe(
    'consumer ack wait; running jobs send in-progress acks every half of it',
  ),
  WORKER_MAX_DELIVER: int(10, { min: 1, max: 1_000 }).describe(
    'server-side limit of deliveries (the safety net for crashing jobs)',
  ),
  // A redelivered job whose runs were cut short this many times (its worker died while it
  // ran, counted in Redis) is dead-lettered instead of killing another worker.
  WORKER_MAX_CRASHES: int(3, { min: 1, max: 1_000 }).describe(
    'runs cut short by a dying worker (counted in Redis) before the job is dead-lettered',
  ),
  WORKER_MAX_ACK_PENDING: int(1_000, { min: 1 }).describe("consumer's max unacknowledged messages"),
  /** Deadline of one run when the handler does not set its own. */
  WORKER_JOB_TIMEOUT: duration('5m', { min: 10, max: MAX_TIMER_MS }).describe(
    "a run's deadline unless the handler sets `timeoutMs`; `ctx.signal` fires",
  ),
  /** Overrides of the error-class table, e.g. {"network":{"maxRetries":8}}. */
  RETRY_CLASSES: json(classOverrides, {}).describe(
    'JSON: overrides of the error-class table, per class and field (`retryable`, `maxRetries`, `baseMs`, `multiplier`, `maxMs`, `jitter`), e.g. `{"network":{"maxRetries":8}}`',
  ),
  /** Per job type overrides, e.g. {"webhook":{"server":{"baseMs":1000}}}. */
  RETRY_TYPES: json(z.record(z.string(), classOverrides), {}).describe(
    'JSON: the same overrides per job type, e.g. `{"webhook":{"server":{"baseMs":1000}}}`',
  ),
  /** Waits longer than this go to the retry-scheduler (shared with the other services: libs/config). */
  ...handoffEnv,
  /** Retry delays up to this are timed by the worker and then NAKed for immediate redelivery. */
  RETRY_LOCAL_DELAY_MAX: duration('10s', { max: MAX_TIMER_MS }).describe(
    'retry delays up to this are timed by the worker, then NAKed for immediate redelivery',
  ),
  /** Token-bucket limits by job type or bucket key (e.g. host:api.example.com); burst 1 (evenly spaced) unless set. */
  WORKER_RATE_LIMITS: json(z.record(z.string(), rateLimit), {}).describe(
    'JSON: token buckets by job type or bucket key (e.g. `host:api.example.com`), `{"<key>":{"perSecond":5,"burst":1}}`; burst 1 (evenly spaced) unless set',
  ),
  /** How long a completed job is remembered, so a lost ack never runs it twice. */
  WORKER_COMPLETED_TTL: duration('24h', { min: 1_000 }).describe(
    'how long Redis remembers that a job without an idempotency key completed, so a lost ack never runs it twice',
  ),
  /** Redis for idempotency markers and limits; without it those features are off. */
  REDIS_URL: optStr().describe(
    'Redis for completion markers, crash counts, rate and concurrency limits; without it those features are off',
  ),
  /** Postgres for step checkpoints (ctx.step); without it ctx.step throws. */
  DATABASE_URL: optStr().describe('Postgres for step checkpoints (`ctx.step`); without it `ctx.step` throws'),
  ...httpHandlerEnv,
});

export function loadWorkerConfig(env: Env = process.env) {
  const e = parseEnv(workerEnv, env);
  return freezeConfig({
    ...serviceSettingsFrom(e),
    http: { host: e.WORKER_HOST, port: e.WORKER_PORT },
    concurrency: e.WORKER_CONCURRENCY,
    prefetch: e.WORKER_PREFETCH || e.WORKER_CONCURRENCY,
    lowLaneEvery: e.WORKER_LOW_LANE_EVERY,
    handlerModules: e.WORKER_HANDLERS,
    types: e.WORKER_TYPES,
    consumer: {
      ackWaitMs: e.WORKER_ACK_WAIT,
      maxDeliver: e.WORKER_MAX_DELIVER,
      maxAckPending: e.WORKER_MAX_ACK_PENDING,
    },
    jobTimeoutMs: e.WORKER_JOB_TIMEOUT,
    retry: {
      classes: e.RETRY_CLASSES,
      types: e.RETRY_TYPES,
      handoffThresholdMs: e.RETRY_HANDOFF_THRESHOLD,
      localDelayMaxMs: e.RETRY_LOCAL_DELAY_MAX,
    },
    rateLimits: Object.fromEntries(
      Object.entries(e.WORKER_RATE_LIMITS).map(([k, v]) => [k, { perSecond: v.perSecond, burst: v.burst ?? 1 }]),
    ),
    completedTtlMs: e.WORKER_COMPLETED_TTL,
    maxCrashes: e.WORKER_MAX_CRASHES,
    redisUrl: e.REDIS_URL,
    databaseUrl: e.DATABASE_URL,
    httpHandler: httpHandlerSettingsFrom(e),
  });
}

export type WorkerConfig = ReturnType<typeof loadWorkerConfig>;
