import {
  duration,
  freezeConfig,
  int,
  MAX_TIMER_MS,
  parseEnv,
  port,
  str,
  type Env,
  serviceEnv,
  serviceSettingsFrom,
} from '@redrive/config';
import { databaseEnv } from '@redrive/store';
import { z } from 'zod';

export const schedulerEnv = z.object({
  ...serviceEnv,
  ...databaseEnv,
  SCHEDULER_HOST: str('0.0.0.0').describe('address of the health and metrics server'),
  SCHEDULER_PORT: port(9091).describe('port of the health and metrics server'),
  /** Due schedules claimed, published and advanced in one transaction. */
  SCHEDULER_BATCH: int(500, { min: 1, max: 5_000 }).describe(
    'due fires claimed, published and committed in one transaction',
  ),
  /**
   * The longest sleep between looks at the table. Not what times fires (a timer on the next due
   * row does, woken early by new requests): the safety net for rows another replica left due.
   */
  SCHEDULER_POLL_MAX: duration('5s', { min: 50, max: MAX_TIMER_MS }).describe(
    'longest sleep between looks (a safety net; the next due row sets the timer)',
  ),
  /** A repeating fire later than this was missed; the schedule's `missed` policy decides what happens. */
  SCHEDULER_MISFIRE_THRESHOLD: duration('10s', { min: 0 }).describe(
    "a repeat's fire later than this was missed; its `missed` policy applies",
  ),
  /** How long to wait for JetStream to acknowledge a fire before trying the row again. */
  SCHEDULER_PUBLISH_TIMEOUT: duration('5s', { min: 100, max: 60_000 }).describe(
    "how long to wait for a fire's PubAck before trying the row again",
  ),
  /** Finished (completed or cancelled) schedules stay listable this long, then are removed. */
  SCHEDULER_RETENTION: duration('7d', { min: 60_000 }).describe(
    'how long completed and cancelled schedules stay listable',
  ),
  /** The request consumer's ack wait: a request not committed by then is delivered again. */
  SCHEDULER_ACK_WAIT: duration('30s', { min: 1_000, max: 3_600_000 }).describe(
    'a request not stored by then is delivered again (harmlessly)',
  ),
  SCHEDULER_MAX_ACK_PENDING: int(10_000, { min: 1 }).describe(
    "requests the scheduler's consumer may hold unacknowledged",
  ),
  /** Postgres connections this replica may open (firing, requests, API, plus one for LISTEN). */
  SCHEDULER_POOL_SIZE: int(10, { min: 3, max: 200 }).describe(
    'Postgres connections per replica (plus one for `LISTEN`)',
  ),
});

export function loadSchedulerConfig(env: Env = process.env) {
  const e = parseEnv(schedulerEnv, env);
  return freezeConfig({
    ...serviceSettingsFrom(e),
    http: { host: e.SCHEDULER_HOST, port: e.SCHEDULER_PORT },
    databaseUrl: e.DATABASE_URL,
    poolSize: e.SCHEDULER_POOL_SIZE,
    batchSize: e.SCHEDULER_BATCH,
    pollMaxMs: e.SCHEDULER_POLL_MAX,
    misfireThresholdMs: e.SCHEDULER_MISFIRE_THRESHOLD,
    publishTimeoutMs: e.SCHEDULER_PUBLISH_TIMEOUT,
    retentionMs: e.SCHEDULER_RETENTION,
    consumer: { ackWaitMs: e.SCHEDULER_ACK_WAIT, maxAckPending: e.SCHEDULER_MAX_ACK_PENDING },
  });
}

export type SchedulerConfig = ReturnType<typeof loadSchedulerConfig>;
