import {
  bytes,
  duration,
  freezeConfig,
  int,
  list,
  MAX_TIMER_MS,
  parseEnv,
  port,
  str,
  type Env,
  serviceEnv,
  serviceSettingsFrom,
} from '@redrive/config';
import { z } from 'zod';

export const intakeEnv = z.object({
  ...serviceEnv,
  INTAKE_HOST: str('0.0.0.0'),
  INTAKE_PORT: port(8080),
  /** Producer API keys; when set, every /v1 request must present one. */
  INTAKE_API_KEYS: list([]),
  INTAKE_MAX_PAYLOAD: bytes(1_048_576),
  INTAKE_MAX_BATCH: int(500, { min: 1, max: 10_000 }),
  INTAKE_MAX_BATCH_BYTES: bytes(16 * 1_048_576),
  INTAKE_PUBLISH_TIMEOUT: duration('5s', { min: 100 }),
  /** How long the list of job types that have a worker is trusted before it is read again. */
  INTAKE_ROUTES_TTL: duration('5s'),
  /** Delays longer than this go to the retry-scheduler; shorter ones wait on JOBS (the worker's threshold too). */
  RETRY_HANDOFF_THRESHOLD: duration('30s', { min: 0, max: MAX_TIMER_MS }),
  /** How long to wait for the retry-scheduler to answer /v1/schedules requests. */
  INTAKE_SCHEDULER_TIMEOUT: duration('5s', { min: 100 }),
});

export function loadIntakeConfig(env: Env = process.env) {
  const e = parseEnv(intakeEnv, env);
  return freezeConfig({
    ...serviceSettingsFrom(e),
    http: { host: e.INTAKE_HOST, port: e.INTAKE_PORT },
    apiKeys: e.INTAKE_API_KEYS,
    maxPayloadBytes: e.INTAKE_MAX_PAYLOAD,
    maxBatch: e.INTAKE_MAX_BATCH,
    maxBatchBytes: e.INTAKE_MAX_BATCH_BYTES,
    publishTimeoutMs: e.INTAKE_PUBLISH_TIMEOUT,
    routesTtlMs: e.INTAKE_ROUTES_TTL,
    handoffThresholdMs: e.RETRY_HANDOFF_THRESHOLD,
    schedulerTimeoutMs: e.INTAKE_SCHEDULER_TIMEOUT,
  });
}

export type IntakeConfig = ReturnType<typeof loadIntakeConfig>;
