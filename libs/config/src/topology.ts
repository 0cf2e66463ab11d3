import type { Frozen } from './load.js';
import { bytes, duration, int, oneOf, str } from './fields.js';
import { z } from 'zod';
import { DEFAULT_TOPOLOGY as D, RESERVED_PREFIXES } from '@redrive/messaging';

/**
 * Environment variables that shape the JetStream streams; every service provisions the same ones.
 * Their defaults are the topology's own (libs/messaging DEFAULT_TOPOLOGY), written once.
 */
export const topologyEnv = {
  // Tenants and test runs share one server by giving each its own prefix on names and subjects.
  REDRIVE_PREFIX: str('')
    .pipe(
      z
        .string()
        .regex(/^([A-Za-z0-9][A-Za-z0-9_-]{0,31})?$/, {
          message: 'expected letters, digits, "_" or "-" (at most 32), starting with a letter or digit',
        })
        .refine((p) => !RESERVED_PREFIXES.includes(p), {
          message: 'jobs, dlq, events, schedule and completions are subject roots and cannot be a prefix',
        }),
    )
    .describe(
      'prefix of stream names and subjects (`<prefix>_JOBS`, `<prefix>.jobs.>`), so tenants and test runs share one server: letters, digits, `_` or `-`, at most 32',
    ),
  STREAM_REPLICAS: int(D.replicas, { min: 1, max: 5 }).describe('replicas of every stream (1–5)'),
  STREAM_STORAGE: oneOf(['file', 'memory'] as const, D.storage).describe('`file` or `memory`'),
  // 0 means no age limit: an unfinished job must never expire out of JOBS.
  JOBS_MAX_AGE: duration(D.jobs.maxAgeMs).describe(
    'age limit of JOBS (`0`: none); leave at 0 unless you accept expiring unfinished jobs',
  ),
  JOBS_MAX_BYTES: bytes(D.jobs.maxBytes, { allowUnlimited: true }).describe(
    'size limit of JOBS (`-1`: none): when reached, intake answers 503',
  ),
  JOBS_MAX_MSGS: int(D.jobs.maxMsgs, { min: -1 }).describe(
    'message limit of JOBS (`-1`: none): when reached, intake answers 503',
  ),
  JOBS_DUPLICATE_WINDOW: duration(D.jobs.duplicateWindowMs, { min: 100 }).describe(
    'how long an idempotency key / `Nats-Msg-Id` is remembered',
  ),
  DLQ_MAX_AGE: duration(D.dlq.maxAgeMs).describe('age limit of the DLQ stream'),
  ADVISORIES_MAX_AGE: duration(D.advisories.maxAgeMs).describe('age limit of the ADVISORIES stream'),
  EVENTS_MAX_AGE: duration(D.events.maxAgeMs).describe(
    'age limit of the EVENTS stream: a Postgres outage longer than this loses the oldest audit events',
  ),
  EVENTS_MAX_BYTES: bytes(D.events.maxBytes, { allowUnlimited: true }).describe(
    'size limit of the EVENTS stream (`-1`: none)',
  ),
  SCHEDULE_MAX_AGE: duration(D.schedule.maxAgeMs).describe('age limit of the SCHEDULE stream (`0`: none)'),
  // How long an idempotency-keyed job's completion is remembered: a job submitted again with
  // the same key within this time is skipped, not run again.
  COMPLETIONS_MAX_AGE: duration(D.completions.maxAgeMs, { min: 60_000 }).describe(
    "how long a keyed job's success is remembered (a job with the same id after that runs again)",
  ),
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
