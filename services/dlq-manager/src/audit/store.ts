// Over 400 lines: all SQL of the audit trail (append, summaries, activity, lookup, cleanup) in one module.
import type pg from 'pg';

/** What can run a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** The changes dlq-manager itself makes, recorded in the audit trail with who made them. */
export const ADMIN_KINDS = [
  'job.redriven',
  'dead_letter.resolved',
  'dead_letter.deleted',
  'dead_letter.expired',
] as const;

/** One row of `audit_events`. */
export interface AuditRow {
  id: string;
  jobId: string;
  type: string | null;
  kind: string;
  attempt: number | null;
  errorClass: string | null;
  error: string | null;
  delayMs: number | null;
  durationMs: number | null;
  traceId: string | null;
  actor: string | null;
  at: Date;
  extra: Record<string, unknown> | null;
}

/** A row of a job's timeline as the APIs show it. */
export interface TimelineEntry {
  id: string;
  kind: string;
  at: string;
  /** 1 for the job's first life, 2 after its first redrive, … */
  life: number;
  attempt?: number;
  errorClass?: string;
  error?: string;
  delayMs?: number;
  durationMs?: number;
  traceId?: string;
  actor?: string;
  extra?: Record<string, unknown>;
}

/**
 * The job status an event leaves behind, or null for events that do not change it (logs,
 * progress, an operator resolving or deleting a dead letter).
 */
export function statusOf(kind: string): string | null {
  switch (kind) {
    case 'job.accepted':
      return 'accepted';
    case 'attempt.started':
      return 'running';
    case 'attempt.succeeded':
    case 'job.skipped': // skipped because an earlier run already completed it
      return 'succeeded';
    case 'attempt.failed':
      return 'retrying';
    case 'retry.scheduled':
      return 'scheduled';
    case 'job.dead_lettered':
      return 'dead_lettered';
    case 'job.redriven':
      return 'redriven';
    case 'job.cancelled':
      return 'cancelled';
    default:
      return null;
  }
}

const TERMINAL = new Set(['succeeded', 'dead_lettered', 'cancelled']);

/**
 * Where an event stands in its job's lifecycle, for the summary: the job's life (`Redrive-Life`
 * `<dead letter id>.<n>`; 0.0 for the first, and dead letter ids only grow), then the stage
 * within it (0 accepted or redriven, 1 running, retrying or scheduled, 2 terminal), then time.
 * The summary keeps the status of the highest: events arrive in any order (intake's
 * `job.accepted` can be stamped after the worker's success), and a terminal state must never
 * be overwritten by an earlier stage of the same life, while a redrive starts the next life.
 */
export function lifecycleRank(kind: string, life: unknown): { lifeA: number; lifeB: number; stage: number } {
  const status = statusOf(kind);
  const stage =
    status === null ? -1 : status === 'accepted' || status === 'redriven' ? 0 : TERMINAL.has(status) ? 2 : 1;
  const m = typeof life === 'string' ? /^(\d{1,15})\.(\d{1,9})$/.exec(life) : null;
  return { lifeA: m ? Number(m[1]) : 0, lifeB: m ? Number(m[2]) : 0, stage };
}

const MAX_TEXT = 10_000;
const INT32_MAX = 2_147_483_647;

// Cut by code points, so an emoji is never split in half. A string of at most `max` UTF-16
// units has at most `max` code points and is kept as it is, without splitting it at all.
const text = (v: unknown, max = MAX_TEXT): string | null =>
  typeof v === 'string' && v !== '' ? (v.length <= max ? v : Array.from(v).slice(0, max).join('')) : null;
const int = (v: unknown): number | null =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= INT32_MAX ? v : null;
const ms = (v: unknown): number | null =>
  typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 9e15 ? Math.round(v) : null;

const KNOWN_FIELDS = new Set([
  'id',
  'kind',
  'jobId',
  'type',
  'at',
  'attempt',
  'traceId',
  'errorClass',
  'error',
  'delayMs',
  'durationMs',
]);

/**
 * Turns one event object into an audit row, or says why it cannot be one. Fields of the wrong
 * type are not dropped: they move to `extra`, so the row is always storable and nothing the
 * event said is lost. An event without an id gets `fallback.id`, which is just as stable.
 */
export function eventToRow(
  body: unknown,
  fallback: { id: string; kind: string; at: Date },
): { ok: true; row: AuditRow } | { ok: false; problem: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { ok: false, problem: 'not a JSON object' };
  const e = body as Record<string, unknown>;
  const jobId = text(e.jobId, 500);
  if (!jobId) return { ok: false, problem: 'no jobId' };
  const at = typeof e.at === 'string' ? new Date(e.at) : undefined;
  const atValid = at !== undefined && !Number.isNaN(at.getTime());
  const kind = text(e.kind, 100) ?? fallback.kind;
  // Only an operator's change carries its actor (queue.paused, queue.resumed: dlq-manager alone
  // may publish them); on any other event an `actor` field is kept in extra, never believed.
  const actor = kind.startsWith('queue.') ? text(e.actor, 200) : null;
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (!KNOWN_FIELDS.has(k) && !(k === 'actor' && actor !== null)) extra[k] = v;
  const row: AuditRow = {
    id: text(e.id, 200) ?? fallback.id,
    jobId,
    type: text(e.type, 200),
    kind,
    attempt: int(e.attempt),
    errorClass: text(e.errorClass, 100),
    error: text(e.error),
    delayMs: ms(e.delayMs),
    durationMs: ms(e.durationMs),
    traceId: text(e.traceId, 100),
    actor,
    at: atValid ? at : fallback.at,
    extra: null,
  };
  for (const [k, v, kept] of [
    ['attempt', e.attempt, row.attempt],
    ['delayMs', e.delayMs, row.delayMs],
    ['durationMs', e.durationMs, row.durationMs],
    ['at', e.at, atValid ? e.at : null],
  ] as const) {
    if (v !== undefined && v !== null && kept === null) extra[k] = v;
  }
  row.extra = Object.keys(extra).length > 0 ? extra : null;
  return { ok: true, row };
}

export type ParsedMessage = { ok: true; rows: AuditRow[]; problems: string[] } | { ok: false; problem: string };

/**
 * Reads one EVENTS message: a single event object, or a JSON array of them (publishers batch
 * events of one kind into one message). Elements without an id are numbered after the
 * message's stream sequence, `<stream>:<seq>:<index>`.
 */
export function parseEventMessage(data: Uint8Array, fallback: { id: string; kind: string; at: Date }): ParsedMessage {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    return { ok: false, problem: `not JSON: ${(err as Error).message}` };
  }
  const items = Array.isArray(body) ? body : [body];
  const rows: AuditRow[] = [];
  const problems: string[] = [];
  for (const [i, item] of items.entries()) {
    const r = eventToRow(item, { ...fallback, id: Array.isArray(body) ? `${fallback.id}:${i}` : fallback.id });
    if (r.ok) rows.push(r.row);
    else problems.push(Array.isArray(body) ? `[${i}] ${r.problem}` : r.problem);
  }
  if (rows.length === 0) return { ok: false, problem: problems.join('; ') || 'an empty array' };
  return { ok: true, rows, problems };
}

// One statement appends the batch and folds the rows it really inserted into the job
// summaries: a replayed event conflicts on its id, is not returned by RETURNING, and so is
// never counted twice. Summaries are upserted in job id order, so two batches touching the
// same jobs lock them in the same order and cannot deadlock each other.
// The batch's status is later in the job's lifecycle than the stored one (lifecycleRank).
const LATER = `(EXCLUDED.status_life_a, EXCLUDED.status_life_b, EXCLUDED.status_stage, EXCLUDED.status_at)
  >= (s.status_life_a, s.status_life_b, s.status_stage, s.status_at)`;

const APPEND_SQL = `
WITH input AS (
  SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
    $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::timestamptz[], $13::jsonb[], $14::text[],
    $15::bigint[], $16::int[], $17::smallint[]
  ) AS t(id, job_id, type, kind, attempt, error_class, error, delay_ms, duration_ms, trace_id, actor, at, extra, status,
         life_a, life_b, stage)
),
unique_input AS (
  SELECT DISTINCT ON (id) * FROM input ORDER BY id
),
ins AS (
  INSERT INTO audit_events (id, job_id, type, kind, attempt, error_class, error, delay_ms, duration_ms, trace_id, actor, at, extra)
  SELECT id, job_id, type, kind, attempt, error_class, error, delay_ms, duration_ms, trace_id, actor, at, extra
  FROM unique_input
  ON CONFLICT (id) DO NOTHING
  RETURNING id
),
new_rows AS (
  SELECT u.* FROM unique_input u JOIN ins USING (id)
),
-- Per job, the row latest in its lifecycle (lifecycleRank): one sort, not one per column.
latest AS (
  SELECT DISTINCT ON (job_id) job_id, status, at AS status_at, life_a AS status_life_a, life_b AS status_life_b,
         stage AS status_stage
    FROM new_rows WHERE status IS NOT NULL
   ORDER BY job_id, life_a DESC, life_b DESC, stage DESC, at DESC, id DESC
),
per_job AS (
  SELECT job_id,
    max(type) AS type,
    count(*) FILTER (WHERE kind IN ('attempt.succeeded', 'attempt.failed')) AS runs,
    count(*) FILTER (WHERE kind = 'job.redriven') AS redrives,
    min(at) AS first_at,
    max(at) AS last_at,
    (array_agg(error_class ORDER BY at DESC, id DESC) FILTER (WHERE kind = 'attempt.failed'))[1] AS error_class,
    (array_agg(error ORDER BY at DESC, id DESC) FILTER (WHERE kind = 'attempt.failed'))[1] AS error,
    max(at) FILTER (WHERE kind = 'attempt.failed') AS error_at
  -- A queue's pause and resume (job id queue:<type>) have a timeline, and no job summary.
  FROM new_rows WHERE kind NOT LIKE 'queue.%' GROUP BY job_id
),
summaries AS (
  INSERT INTO job_summaries AS s (job_id, type, status, status_at, status_life_a, status_life_b, status_stage,
                                  attempts, lives, first_seen_at, last_seen_at, last_error_class, last_error, last_error_at)
  SELECT job_id, type, COALESCE(status, 'running'), COALESCE(status_at, '-infinity'), COALESCE(status_life_a, 0),
         COALESCE(status_life_b, 0), COALESCE(status_stage, -1), runs, 1 + redrives, first_at, last_at, error_class,
         error, error_at
  FROM per_job LEFT JOIN latest USING (job_id) ORDER BY job_id
  ON CONFLICT (job_id) DO UPDATE SET
    type = COALESCE(s.type, EXCLUDED.type),
    status = CASE WHEN ${LATER} THEN EXCLUDED.status ELSE s.status END,
    status_at = CASE WHEN ${LATER} THEN EXCLUDED.status_at ELSE s.status_at END,
    status_life_a = CASE WHEN ${LATER} THEN EXCLUDED.status_life_a ELSE s.status_life_a END,
    status_life_b = CASE WHEN ${LATER} THEN EXCLUDED.status_life_b ELSE s.status_life_b END,
    status_stage = CASE WHEN ${LATER} THEN EXCLUDED.status_stage ELSE s.status_stage END,
    attempts = s.attempts + EXCLUDED.attempts,
    lives = s.lives + EXCLUDED.lives - 1,
    first_seen_at = LEAST(s.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
    last_error_class = CASE WHEN EXCLUDED.last_error_at >= s.last_error_at OR s.last_error_at IS NULL
                            THEN COALESCE(EXCLUDED.last_error_class, s.last_error_class) ELSE s.last_error_class END,
    last_error = CASE WHEN EXCLUDED.last_error_at >= s.last_error_at OR s.last_error_at IS NULL
                      THEN COALESCE(EXCLUDED.last_error, s.last_error) ELSE s.last_error END,
    last_error_at = GREATEST(s.last_error_at, EXCLUDED.last_error_at)
  RETURNING 1
),
-- The queue stats' rolling counts (audit_activity, 10 s buckets), from the rows really inserted.
-- Read after the summaries in the SELECT below, so every batch locks summaries, then buckets.
activity AS (
  INSERT INTO audit_activity AS a (bucket, type, succeeded, failed, dead_lettered)
  SELECT to_timestamp(floor(extract(epoch FROM at) / 10) * 10), type,
         count(*) FILTER (WHERE kind = 'attempt.succeeded'),
         count(*) FILTER (WHERE kind = 'attempt.failed'),
         count(*) FILTER (WHERE kind = 'job.dead_lettered')
    FROM new_rows
   WHERE type IS NOT NULL AND kind IN ('attempt.succeeded', 'attempt.failed', 'job.dead_lettered')
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (bucket, type) DO UPDATE SET
    succeeded = a.succeeded + EXCLUDED.succeeded,
    failed = a.failed + EXCLUDED.failed,
    dead_lettered = a.dead_lettered + EXCLUDED.dead_lettered
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM summaries)::int AS summaries,
       (SELECT count(*) FROM activity)::int AS buckets`;

/**
 * Appends audit rows in one statement and updates the summaries of their jobs; rows whose id
 * is already stored are skipped. Returns how many rows were new.
 */
export async function appendAudit(db: Queryable, rows: readonly AuditRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const col = <T>(f: (r: AuditRow) => T) => rows.map(f);
  const ranks = rows.map((r) => lifecycleRank(r.kind, r.extra?.life));
  const result = await db.query<{ inserted: number }>(APPEND_SQL, [
    col((r) => r.id),
    col((r) => r.jobId),
    col((r) => r.type),
    col((r) => r.kind),
    col((r) => r.attempt),
    col((r) => r.errorClass),
    col((r) => r.error),
    col((r) => r.delayMs),
    col((r) => r.durationMs),
    col((r) => r.traceId),
    col((r) => r.actor),
    col((r) => r.at.toISOString()),
    col((r) => (r.extra ? JSON.stringify(r.extra) : null)),
    col((r) => statusOf(r.kind)),
    ranks.map((r) => r.lifeA),
    ranks.map((r) => r.lifeB),
    ranks.map((r) => r.stage),
  ]);
  return result.rows[0]?.inserted ?? 0;
}

interface TimelineRow {
  id: string;
  kind: string;
  at: Date;
  attempt: number | null;
  error_class: string | null;
  error: string | null;
  delay_ms: string | null;
  duration_ms: string | null;
  trace_id: string | null;
  actor: string | null;
  extra: Record<string, unknown> | null;
}

/** Numbers each event with the life of the job it belongs to: a redrive starts the next one. */
export function toTimeline(rows: readonly TimelineRow[]): TimelineEntry[] {
  let life = 1;
  return rows.map((r) => {
    if (r.kind === 'job.redriven') life++;
    return {
      id: r.id,
      kind: r.kind,
      at: r.at.toISOString(),
      life,
      ...(r.attempt !== null ? { attempt: r.attempt } : {}),
      ...(r.error_class !== null ? { errorClass: r.error_class } : {}),
      ...(r.error !== null ? { error: r.error } : {}),
      ...(r.delay_ms !== null ? { delayMs: Number(r.delay_ms) } : {}),
      ...(r.duration_ms !== null ? { durationMs: Number(r.duration_ms) } : {}),
      ...(r.trace_id !== null ? { traceId: r.trace_id } : {}),
      ...(r.actor !== null ? { actor: r.actor } : {}),
      ...(r.extra !== null ? { extra: r.extra } : {}),
    };
  });
}

/** A job's audit history, oldest first; empty when nothing is known about it. */
export async function readTimeline(db: Queryable, jobId: string, limit = 10_000): Promise<TimelineEntry[]> {
  const { rows } = await db.query<TimelineRow>(
    `SELECT id, kind, at, attempt, error_class, error, delay_ms, duration_ms, trace_id, actor, extra
       FROM audit_events WHERE job_id = $1 ORDER BY at, id LIMIT $2`,
    [jobId, limit],
  );
  return toTimeline(rows);
}

export interface JobSummary {
  jobId: string;
  type?: string;
  status: string;
  attempts: number;
  lives: number;
  firstSeenAt: string;
  lastSeenAt: string;
  lastErrorClass?: string;
  lastError?: string;
}

/** A row of job_summaries, as read by `SUMMARY_COLUMNS`. */
export interface SummaryRow {
  job_id: string;
  type: string | null;
  status: string;
  attempts: number;
  lives: number;
  first_seen_at: Date;
  last_seen_at: Date;
  last_error_class: string | null;
  last_error: string | null;
}

export const SUMMARY_COLUMNS =
  'job_id, type, status, attempts, lives, first_seen_at, last_seen_at, last_error_class, last_error';

/** A job_summaries row as the APIs show it. */
export function toSummary(r: SummaryRow): JobSummary {
  return {
    jobId: r.job_id,
    ...(r.type !== null ? { type: r.type } : {}),
    status: r.status,
    attempts: r.attempts,
    lives: r.lives,
    firstSeenAt: r.first_seen_at.toISOString(),
    lastSeenAt: r.last_seen_at.toISOString(),
    ...(r.last_error_class !== null ? { lastErrorClass: r.last_error_class } : {}),
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
  };
}

/** The summary row of a job, or undefined when none exists. */
export async function readSummary(db: Queryable, jobId: string): Promise<JobSummary | undefined> {
  const { rows } = await db.query<SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM job_summaries WHERE job_id = $1`, [
    jobId,
  ]);
  return rows[0] ? toSummary(rows[0]) : undefined;
}
