import {
  bool,
  duration,
  freezeConfig,
  int,
  json,
  oneOf,
  optStr,
  secret,
  parseEnv,
  port,
  str,
  type Env,
  serviceEnv,
  serviceSettingsFrom,
} from '@redrive/config';
import { databaseEnv } from '@redrive/store';
import { z } from 'zod';

const tokenEntry = z
  .object({
    name: z.string().min(1).max(100),
    role: z.enum(['viewer', 'operator']),
    token: z.string().min(16, { message: 'a token needs at least 16 characters' }),
  })
  .strict();

/** Test-only fault injection: kill the process (SIGKILL) at a named point. */
export const FAULTS = ['', 'exit-after-dlq-publish', 'exit-before-record-commit'] as const;
export type Fault = (typeof FAULTS)[number];

export const dlqEnv = z.object({
  ...serviceEnv,
  ...databaseEnv,
  DLQ_HOST: str('0.0.0.0').describe('address of the admin API (and `/metrics`, `/healthz`, `/readyz`)'),
  DLQ_PORT: port(8081).describe('port of the admin API (and `/metrics`, `/healthz`, `/readyz`)'),
  /** Bearer tokens of the admin API: [{"name":"alice","role":"operator","token":"…"}]. */
  DLQ_TOKENS: json(
    z.array(tokenEntry).superRefine((list, ctx) => {
      const names = new Set<string>();
      const tokens = new Set<string>();
      for (const [i, t] of list.entries()) {
        if (names.has(t.name))
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `name "${t.name}" is used twice` });
        if (tokens.has(t.token))
          ctx.addIssue({ code: 'custom', path: [i, 'token'], message: 'the same token is listed twice' });
        names.add(t.name);
        tokens.add(t.token);
      }
    }),
    [],
  ).describe(
    'JSON `[{"name","role":"viewer" or "operator","token"}]`, tokens ≥ 16 characters; none: every request is 401',
  ),
  /** Apply pending migrations at start (several replicas may; an advisory lock serialises them). */
  DLQ_MIGRATE: bool(true).describe('create the database if missing and migrate it at start (replicas wait on a lock)'),
  /** Resolved dead letters are removed this long after they were resolved. */
  DLQ_RETENTION: duration('30d', { min: 1_000 }).describe(
    'resolved entries are removed this long after they were resolved',
  ),
  /** How often the retention cleanup runs; 0 turns the schedule off (on demand still works). */
  DLQ_CLEANUP_INTERVAL: duration('1h').describe('how often the retention cleanup runs (`0`: only on demand)'),
  /** Most EVENTS messages written to Postgres in one statement (each may hold many events). */
  DLQ_AUDIT_BATCH: int(500, { min: 1, max: 5_000 }).describe(
    'most EVENTS messages written to Postgres in one statement',
  ),
  /** The most dead letters one bulk redrive may take; more matching needs a narrower filter or `limit`. */
  DLQ_BULK_REDRIVE_MAX: int(1_000, { min: 1, max: 10_000 }).describe(
    'the most entries one bulk redrive may take (≤ 10,000); a request matching more without `limit` is refused (400)',
  ),
  /** Ack wait of dlq-manager's own consumers; held messages get in-progress acks well within it. */
  DLQ_ACK_WAIT: duration('30s', { min: 1_000, max: 3_600_000 }).describe(
    "ack wait of dlq-manager's consumers (held messages get in-progress acks)",
  ),
  /** Signs session cookies; replicas sharing it share sessions. */
  DLQ_SESSION_SECRET: secret({ minLength: 32 }).describe(
    'signs the session cookies of people who sign in (POST /v1/session), at least 32 characters; give every replica the same one. Unset: a random one per process (sessions end at a restart and stay on their replica)',
  ),
  DLQ_SESSION_TTL: duration('8h', { min: 60_000, max: 7 * 86_400_000 }).describe(
    'how long a session cookie lasts after sign-in (≤ 7 days)',
  ),
  DLQ_SESSION_SECURE: bool(false).describe(
    'mark session cookies `Secure` (sent over HTTPS only): set it wherever the admin API is reached over TLS',
  ),
  /** A job's trace link: `{traceId}` is replaced by its trace id. */
  DLQ_TRACE_URL_TEMPLATE: optStr()
    .refine((v) => v === undefined || (/^https?:\/\//.test(v) && v.includes('{traceId}')), {
      message: 'must be an http(s) URL containing {traceId}, e.g. https://jaeger.example/trace/{traceId}',
    })
    .describe(
      "a job's trace link in the job lookup (`GET /v1/jobs/:id`): an http(s) URL with `{traceId}`, e.g. `https://jaeger.example/trace/{traceId}`; unset: no link",
    ),
  /** Test-only: kill the process at this point (see docs/operations.md). Never set in production. */
  DLQ_FAULT: oneOf(FAULTS, '').describe(
    'tests only: `exit-after-dlq-publish` or `exit-before-record-commit` kills the process there (see docs/operations.md); never set it in a deployment',
  ),
});

export function loadDlqConfig(env: Env = process.env) {
  const e = parseEnv(dlqEnv, env);
  return freezeConfig({
    ...serviceSettingsFrom(e),
    databaseUrl: e.DATABASE_URL,
    migrate: e.DLQ_MIGRATE,
    http: { host: e.DLQ_HOST, port: e.DLQ_PORT },
    tokens: e.DLQ_TOKENS,
    retentionMs: e.DLQ_RETENTION,
    bulkRedriveMax: e.DLQ_BULK_REDRIVE_MAX,
    cleanupIntervalMs: e.DLQ_CLEANUP_INTERVAL,
    audit: { batch: e.DLQ_AUDIT_BATCH },
    ackWaitMs: e.DLQ_ACK_WAIT,
    fault: e.DLQ_FAULT,
    traceUrlTemplate: e.DLQ_TRACE_URL_TEMPLATE,
    session: { secret: e.DLQ_SESSION_SECRET, ttlMs: e.DLQ_SESSION_TTL, secure: e.DLQ_SESSION_SECURE },
  });
}

export type DlqConfig = ReturnType<typeof loadDlqConfig>;
