import type { Frozen } from './load.js';
import { bytes, duration, int, oneOf, str } from './fields.js';
import { z } from 'zod';

/** Environment variables that shape the JetStream streams; every service provisions the same ones. */
export const topologyEnv = {
  // Tenants and test runs share one server by giving each its own prefix on names and subjects.
  REDRIVE_PREFIX: str('').pipe(
    z
      .string()
      .regex(/^([A-Za-z0-9][A-Za-z0-9_-]{0,31})?$/, {
        message: 'expected letters, digits, "_" or "-" (at most 32), starting with a letter or digit',
      })
      .refine((p) => !['jobs', 'dlq', 'events', 'schedule', 'completions'].includes(p), {
        message: 'jobs, dlq, events, schedule and completions are subject roots and cannot be a prefix',
      }),
  ),
  STREAM_REPLICAS: int(1, { min: 1, max: 5 }),
  STREAM_STORAGE: oneOf(['file', 'memory'] as const, 'file'),
  // 0 means no age limit: an unfinished job must never expire out of JOBS.
  JOBS_MAX_AGE: duration(0),
  JOBS_MAX_BYTES: bytes(-1, { allowUnlimited: true }),
  JOBS_MAX_MSGS: int(-1, { min: -1 }),
  JOBS_DUPLICATE_WINDOW: duration('15m', { min: 100 }),
  DLQ_MAX_AGE: duration('30d'),
  ADVISORIES_MAX_AGE: duration('7d'),
  EVENTS_MAX_AGE: duration('7d'),
  EVENTS_MAX_BYTES: bytes(-1, { allowUnlimited: true }),
  SCHEDULE_MAX_AGE: duration(0),
  // How long an idempotency-keyed job's completion is remembered: a job submitted again with
  // the same key within this time is skipped, not run again.
  COMPLETIONS_MAX_AGE: duration('7d', { min: 60_000 }),
};

type TopologyEnv = Frozen<{ [K in keyof typeof topologyEnv]: ReturnType<(typeof topologyEnv)[K]['parse']> }>;

/** The stream options described by parsed topology variables. */
export function topologyOptionsFrom(env: Readonly<TopologyEnv>) {
  return {
    prefix: env.REDRIVE_PREFIX,
    replicas: env.STREAM_REPLICAS,
    storage: env.STREAM_STORAGE,
    jobs: {
      maxAgeMs: env.JOBS_MAX_AGE,
      maxBytes: env.JOBS_MAX_BYTES,
      maxMsgs: env.JOBS_MAX_MSGS,
      duplicateWindowMs: env.JOBS_DUPLICATE_WINDOW,
    },
    dlq: { maxAgeMs: env.DLQ_MAX_AGE },
    advisories: { maxAgeMs: env.ADVISORIES_MAX_AGE },
    events: { maxAgeMs: env.EVENTS_MAX_AGE, maxBytes: env.EVENTS_MAX_BYTES },
    schedule: { maxAgeMs: env.SCHEDULE_MAX_AGE },
    completions: { maxAgeMs: env.COMPLETIONS_MAX_AGE },
  };
}
