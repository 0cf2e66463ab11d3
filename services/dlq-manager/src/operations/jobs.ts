import type { JetStreamManager } from '@nats-io/jetstream';
import { headersToObject, jobIdOf, keyedJobId, type Topology } from '@redrive/messaging';
import type { Pool } from '@redrive/store';
import {
  readSummary,
  readTimeline,
  SUMMARY_COLUMNS,
  toSummary,
  type JobSummary,
  type Queryable,
  type SummaryRow,
  type TimelineEntry,
} from '../audit/store.js';
import { OperationError } from '../dead-letters/errors.js';
import { getDeadLetter, listDeadLetters } from '../dead-letters/store.js';
import { dateParam, payloadFields, toView, type DeadLetterView } from '../dead-letters/views.js';
import { guarded } from './guarded.js';

// Finding a job and showing everything known about it on one page: its summary and timeline
// (the audit trail), each attempt with its error, its logs, progress and step checkpoints, its
// dead letters, the schedule it came from, its payload and headers where a copy is kept, and a
// link to its trace.

const MAX_PAGE = 500;
const DEFAULT_PAGE = 50;

export const JOB_STATUSES = [
  'accepted',
  'running',
  'retrying',
  'scheduled',
  'succeeded',
  'dead_lettered',
  'redriven',
  'cancelled',
] as const;

export interface JobSearch {
  id?: string;
  idempotencyKey?: string;
  type?: string;
  status?: (typeof JOB_STATUSES)[number];
  /** Last seen at or after (RFC 3339). */
  from?: string;
  /** Last seen before (RFC 3339). */
  to?: string;
  limit?: number;
  cursor?: string;
}

export interface Attempt {
  life: number;
  attempt?: number;
  outcome: 'succeeded' | 'failed';
  at: string;
  durationMs?: number;
  errorClass?: string;
  error?: string;
  /** A failed attempt's retry delay. */
  retryInMs?: number;
}

export interface JobDetail {
  jobId: string;
  summary: JobSummary | null;
  attempts: Attempt[];
  logs: { at: string; life: number; attempt?: number; message: unknown; fields?: unknown }[];
  /** The last value the handler reported with ctx.progress(), and every report. */
  progress: { at: string; life: number; value: unknown }[];
  steps: { step: string; completedAt: string; result: unknown }[];
  deadLetters: DeadLetterView[];
  schedule: ScheduleRef | null;
  /** Where the payload shown comes from: the job still in JOBS, its latest dead letter, or its schedule. */
  payloadSource: 'jobs' | 'dead_letter' | 'schedule' | null;
  payload?: unknown;
  payloadBase64?: string;
  headers?: Record<string, string>;
  traceId: string | null;
  traceUrl: string | null;
  timeline: TimelineEntry[];
}

export interface ScheduleRef {
  id: string;
  kind: string;
  status: string;
  nextDueAt: string | null;
  fireCount: number;
  createdAt: string;
}

function encodeCursor(at: Date, jobId: string): string {
  return Buffer.from(JSON.stringify([at.toISOString(), jobId])).toString('base64url');
}

function decodeCursor(cursor: string): { at: string; jobId: string } {
  try {
    const [at, jobId] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof at === 'string' && typeof jobId === 'string' && !Number.isNaN(Date.parse(at))) return { at, jobId };
  } catch {
    // answered below
  }
  throw new OperationError('INVALID_CURSOR', 'cursor is not one this API returned (pass nextCursor as it came)');
}

/** The trace link of a template such as `https://jaeger.example/trace/{traceId}`. */
export function traceUrlOf(template: string | undefined, traceId: string | null): string | null {
  if (!template || !traceId) return null;
  return template.replaceAll('{traceId}', encodeURIComponent(traceId));
}

/** Jobs by id, idempotency key, type, status and time of their latest activity, newest first. */
export async function searchJobs(
  db: Queryable,
  q: JobSearch,
): Promise<{ items: JobSummary[]; nextCursor: string | null }> {
  let id = q.id;
  if (q.idempotencyKey !== undefined) {
    if (q.type === undefined)
      throw new OperationError(
        'VALIDATION_ERROR',
        'idempotencyKey needs type: a key names a job within its type (the job id is <type>:<key>)',
      );
    const keyed = keyedJobId(q.type, q.idempotencyKey);
    if (id !== undefined && id !== keyed)
      throw new OperationError('VALIDATION_ERROR', `id and idempotencyKey name different jobs (${id}, ${keyed})`);
    id = keyed;
  }
  const limit = Math.min(MAX_PAGE, q.limit ?? DEFAULT_PAGE);
  const where: string[] = ["job_id NOT LIKE 'queue:%'"];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (id !== undefined) add('job_id = ?', id);
  if (q.type !== undefined) add('type = ?', q.type);
  if (q.status !== undefined) add('status = ?', q.status);
  const from = dateParam('from', q.from);
  const to = dateParam('to', q.to);
  if (from !== undefined) add('last_seen_at >= ?', from);
  if (to !== undefined) add('last_seen_at < ?', to);
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    params.push(c.at, c.jobId);
    where.push(`(last_seen_at, job_id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(limit + 1);
  const { rows } = await db.query<SummaryRow>(
    `SELECT ${SUMMARY_COLUMNS} FROM job_summaries WHERE ${where.join(' AND ')}
      ORDER BY last_seen_at DESC, job_id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toSummary),
    nextCursor: rows.length > limit && last ? encodeCursor(last.last_seen_at, last.job_id) : null,
  };
}

function attemptsOf(timeline: readonly TimelineEntry[]): Attempt[] {
  return timeline
    .filter((e) => e.kind === 'attempt.succeeded' || e.kind === 'attempt.failed')
    .map((e) => ({
      life: e.life,
      ...(e.attempt !== undefined ? { attempt: e.attempt } : {}),
      outcome: e.kind === 'attempt.succeeded' ? ('succeeded' as const) : ('failed' as const),
      at: e.at,
      ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}),
      ...(e.errorClass !== undefined ? { errorClass: e.errorClass } : {}),
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.kind === 'attempt.failed' && e.delayMs !== undefined ? { retryInMs: e.delayMs } : {}),
    }));
}

const dataOf = (e: TimelineEntry): unknown => e.extra?.data;

/** The schedule that fired the job (a delay, repeat or cron; a redrive later), not its retries. */
async function scheduleOf(
  db: Queryable,
  topology: Topology,
  jobId: string,
  timeline: readonly TimelineEntry[],
): Promise<(ScheduleRef & { payload: Uint8Array; headers: [string, string][] }) | null> {
  const named = timeline
    .map((e) => dataOf(e))
    .find((d): d is { scheduleId: string } => typeof (d as { scheduleId?: unknown })?.scheduleId === 'string');
  // A repeat's fire n carries the job id `<job id>:<n>`.
  const base = /^(.+):(\d+)$/.exec(jobId)?.[1];
  const { rows } = await db.query<{
    id: string;
    kind: string;
    status: string;
    next_due_at: Date | null;
    fire_count: number;
    created_at: Date;
    payload: Buffer;
    headers: [string, string][];
  }>(
    `SELECT id, kind, status, next_due_at, fire_count, created_at, payload, headers FROM schedules
      WHERE namespace = $1 AND kind <> 'retry' AND (id = $2 OR job_id = $3 OR job_id = $4)
      ORDER BY (id = $2) DESC, created_at DESC LIMIT 1`,
    [topology.options.prefix, named?.scheduleId ?? '', jobId, base ?? jobId],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    nextDueAt: r.next_due_at?.toISOString() ?? null,
    fireCount: r.fire_count,
    createdAt: r.created_at.toISOString(),
    payload: r.payload,
    headers: r.headers,
  };
}

/** The job's message while it is still in JOBS (intake's job.accepted names its sequence). */
async function waitingMessage(
  jsm: JetStreamManager,
  topology: Topology,
  jobId: string,
  timeline: readonly TimelineEntry[],
): Promise<{ payload: Uint8Array; headers: Record<string, string> } | undefined> {
  const accepted = [...timeline].reverse().find((e) => e.kind === 'job.accepted');
  const seq = (dataOf(accepted ?? ({} as TimelineEntry)) as { seq?: unknown } | undefined)?.seq;
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq <= 0) return undefined;
  const msg = await jsm.streams.getMessage(topology.streams.jobs, { seq }).catch(() => null);
  // The sequence is reused by nothing, but the message may be gone (finished) or another's.
  if (!msg || jobIdOf(msg.header, '') !== jobId) return undefined;
  return { payload: msg.data, headers: headersToObject(msg.header) };
}

/** Everything known about one job; 404 when nothing is. */
export async function jobDetail(
  deps: { pool: Pool; jsm: JetStreamManager; topology: Topology; traceUrlTemplate?: string | undefined },
  jobId: string,
): Promise<JobDetail> {
  const { pool } = deps;
  const [timeline, summary, deadLetters, steps] = await Promise.all([
    readTimeline(pool, jobId),
    readSummary(pool, jobId),
    listDeadLetters(pool, { jobId }, { limit: 20 }),
    pool.query<{ step: string; result: unknown; completed_at: Date }>(
      'SELECT step, result, completed_at FROM job_steps WHERE job_id = $1 ORDER BY completed_at, step',
      [jobId],
    ),
  ]);
  if (timeline.length === 0 && !summary && deadLetters.length === 0)
    throw new OperationError('NOT_FOUND', `nothing is known about job ${jobId}`);
  const schedule = await scheduleOf(pool, deps.topology, jobId, timeline);

  let source: JobDetail['payloadSource'] = null;
  let body: { payload?: unknown; payloadBase64?: string } = {};
  let headers: Record<string, string> | undefined;
  const waiting = await waitingMessage(deps.jsm, deps.topology, jobId, timeline);
  const latestDead = deadLetters[0] ? await getDeadLetter(pool, deadLetters[0].id) : undefined;
  if (waiting) {
    source = 'jobs';
    body = payloadFields(waiting.payload);
    headers = waiting.headers;
  } else if (latestDead?.payload) {
    source = 'dead_letter';
    body = payloadFields(latestDead.payload);
    headers = latestDead.headers;
  } else if (schedule) {
    source = 'schedule';
    body = payloadFields(schedule.payload);
    headers = Object.fromEntries(schedule.headers);
  }
  const traceId = timeline.find((e) => e.traceId)?.traceId ?? latestDead?.traceId ?? null;
  const { payload: _p, headers: _h, ...scheduleRef } = schedule ?? { payload: undefined, headers: undefined };
  return {
    jobId,
    summary: summary ?? null,
    attempts: attemptsOf(timeline),
    logs: timeline
      .filter((e) => e.kind === 'job.log')
      .map((e) => {
        const d = (dataOf(e) ?? {}) as { message?: unknown; fields?: unknown };
        return {
          at: e.at,
          life: e.life,
          ...(e.attempt !== undefined ? { attempt: e.attempt } : {}),
          message: d.message ?? null,
          ...(d.fields !== undefined ? { fields: d.fields } : {}),
        };
      }),
    progress: timeline
      .filter((e) => e.kind === 'job.progress')
      .map((e) => ({ at: e.at, life: e.life, value: dataOf(e) ?? null })),
    steps: steps.rows.map((s) => ({ step: s.step, completedAt: s.completed_at.toISOString(), result: s.result })),
    deadLetters: deadLetters.map(toView),
    schedule: schedule ? (scheduleRef as ScheduleRef) : null,
    payloadSource: source,
    ...body,
    ...(headers ? { headers } : {}),
    traceId,
    traceUrl: traceUrlOf(deps.traceUrlTemplate, traceId),
    timeline,
  };
}

/** Job search and detail, refusing as unavailable while Postgres cannot be reached. */
export function createJobLookup(deps: {
  pool: Pool;
  jsm: JetStreamManager;
  topology: Topology;
  traceUrlTemplate?: string | undefined;
}) {
  return guarded({
    search: (q: JobSearch) => searchJobs(deps.pool, q),
    detail: (jobId: string) => jobDetail(deps, jobId),
  });
}

export type JobLookup = ReturnType<typeof createJobLookup>;
