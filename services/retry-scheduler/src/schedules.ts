import type { MissedPolicy, RepeatSpec } from '@redrive/recurrence';
import type { Pool } from '@redrive/store';
import type pg from 'pg';

// The `schedules` table (migration 0002): every query of the scheduler, in one place. Each
// function takes the client or pool to run on, so the caller decides what shares a transaction.

export const SCHEDULE_KINDS = ['delay', 'retry', 'redrive', 'repeat', 'cron'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];
export type ScheduleStatus = 'active' | 'completed' | 'cancelled';

/** A schedule as a request asks for it, before it is stored. */
export interface NewSchedule {
  id: string;
  requestId: string;
  kind: ScheduleKind;
  subject: string;
  jobId: string;
  attempt: number;
  payload: Uint8Array;
  headers: [string, string][];
  repeat?: RepeatSpec | undefined;
  /** The first fire. */
  dueAt: Date;
}

export interface ScheduleRow {
  id: string;
  kind: ScheduleKind;
  subject: string;
  jobId: string;
  attempt: number;
  payload: Buffer;
  headers: [string, string][];
  everyMs: number | null;
  cron: string | null;
  tz: string | null;
  fireLimit: number | null;
  startsAt: Date;
  endsAt: Date | null;
  missed: MissedPolicy;
  nextDueAt: Date | null;
  fireCount: number;
  status: ScheduleStatus;
  cancelReason: string | null;
  createdAt: Date;
  updatedAt: Date;
  lastFiredAt: Date | null;
  finishedAt: Date | null;
}

/** How a claimed row moves on after its fire: its next due time, or finished when there is none. */
export interface Advance {
  id: string;
  next: Date | undefined;
  fireCount: number;
  fired: boolean;
}

/** Listeners of this channel hear `<namespace> <due ms>` when a nearer schedule may have arrived. */
export const NOTIFY_CHANNEL = 'redrive_schedules';

const COLUMNS = `id, kind, subject, job_id, attempt, payload, headers, every_ms, cron, tz, fire_limit, starts_at,
  ends_at, missed, next_due_at, fire_count, status, cancel_reason, created_at, updated_at, last_fired_at, finished_at`;

interface DbRow {
  id: string;
  kind: ScheduleKind;
  subject: string;
  job_id: string;
  attempt: number;
  payload: Buffer;
  headers: [string, string][];
  every_ms: string | null;
  cron: string | null;
  tz: string | null;
  fire_limit: number | null;
  starts_at: Date;
  ends_at: Date | null;
  missed: MissedPolicy;
  next_due_at: Date | null;
  fire_count: number;
  status: ScheduleStatus;
  cancel_reason: string | null;
  created_at: Date;
  updated_at: Date;
  last_fired_at: Date | null;
  finished_at: Date | null;
}

function fromDb(r: DbRow): ScheduleRow {
  return {
    id: r.id,
    kind: r.kind,
    subject: r.subject,
    jobId: r.job_id,
    attempt: r.attempt,
    payload: r.payload,
    headers: r.headers,
    // bigint arrives as a string; an interval fits a double exactly.
    everyMs: r.every_ms === null ? null : Number(r.every_ms),
    cron: r.cron,
    tz: r.tz,
    fireLimit: r.fire_limit,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    missed: r.missed,
    nextDueAt: r.next_due_at,
    fireCount: r.fire_count,
    status: r.status,
    cancelReason: r.cancel_reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastFiredAt: r.last_fired_at,
    finishedAt: r.finished_at,
  };
}

/** The repeat specification a row was created with; undefined for a one-shot. */
export function repeatOf(row: ScheduleRow): RepeatSpec | undefined {
  if (row.everyMs === null && row.cron === null) return undefined;
  return {
    ...(row.everyMs !== null ? { every: row.everyMs } : {}),
    ...(row.cron !== null ? { cron: row.cron } : {}),
    ...(row.tz !== null ? { tz: row.tz } : {}),
    ...(row.fireLimit !== null ? { limit: row.fireLimit } : {}),
    ...(row.endsAt !== null ? { until: row.endsAt } : {}),
    missed: row.missed,
  };
}

// 18 parameters a row: 200 rows stay far below Postgres's 65,535 parameters per statement.
const INSERT_CHUNK = 200;

/**
 * Stores new schedules; a schedule whose id or request id is already stored (a redelivered
 * request) is left as it is. Returns the rows this call created.
 */
export async function insertSchedules(
  db: pg.ClientBase,
  namespace: string,
  rows: readonly NewSchedule[],
): Promise<{ id: string; dueAt: Date }[]> {
  const created: { id: string; dueAt: Date }[] = [];
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    const values: unknown[] = [];
    const tuples = chunk.map((r) => {
      const base = values.length;
      const spec = r.repeat;
      values.push(
        namespace,
        r.id,
        r.requestId,
        r.kind,
        r.subject,
        r.jobId,
        r.attempt,
        Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength),
        JSON.stringify(r.headers),
        spec?.every ?? null,
        spec?.cron ?? null,
        spec?.tz ?? null,
        spec?.limit ?? null,
        r.dueAt,
        spec?.until ?? null,
        spec?.missed ?? 'once',
        r.dueAt,
      );
      const p = (n: number) => `$${base + n}`;
      return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}::jsonb, ${p(10)}, ${p(11)}, ${p(12)}, ${p(13)}, ${p(14)}, ${p(15)}, ${p(16)}, ${p(17)})`;
    });
    const { rows: inserted } = await db.query<{ id: string; next_due_at: Date }>(
      `INSERT INTO schedules (namespace, id, request_id, kind, subject, job_id, attempt, payload, headers, every_ms,
         cron, tz, fire_limit, starts_at, ends_at, missed, next_due_at)
       VALUES ${tuples.join(', ')}
       ON CONFLICT DO NOTHING
       RETURNING id, next_due_at`,
      values,
    );
    for (const r of inserted) created.push({ id: r.id, dueAt: r.next_due_at });
  }
  return created;
}

/**
 * Locks and returns up to `limit` active schedules due at `now`, earliest first. Rows another
 * replica holds are skipped, not waited for, so replicas split the due rows between them.
 */
export async function claimDue(db: pg.ClientBase, namespace: string, now: Date, limit: number): Promise<ScheduleRow[]> {
  const { rows } = await db.query<DbRow>(
    `SELECT ${COLUMNS} FROM schedules
      WHERE namespace = $1 AND status = 'active' AND next_due_at <= $2
      ORDER BY next_due_at
      LIMIT $3
      FOR UPDATE SKIP LOCKED`,
    [namespace, now, limit],
  );
  return rows.map(fromDb);
}

/** The due time of the earliest active schedule no other transaction holds; undefined when there is none. */
export async function peekNextDue(db: pg.ClientBase | Pool, namespace: string): Promise<Date | undefined> {
  const { rows } = await db.query<{ next_due_at: Date }>(
    `SELECT next_due_at FROM schedules
      WHERE namespace = $1 AND status = 'active'
      ORDER BY next_due_at
      LIMIT 1
      FOR UPDATE SKIP LOCKED`,
    [namespace],
  );
  return rows[0]?.next_due_at;
}

/** Active schedules by kind: how many wait for a fire, and how many of those are due at `now` and not yet fired. */
export async function countActive(
  db: pg.ClientBase | Pool,
  namespace: string,
  now: Date,
): Promise<{ kind: ScheduleKind; waiting: number; due: number }[]> {
  const { rows } = await db.query<{ kind: ScheduleKind; waiting: string; due: string }>(
    `SELECT kind, count(*) AS waiting, count(*) FILTER (WHERE next_due_at <= $2) AS due
       FROM schedules
      WHERE namespace = $1 AND status = 'active'
      GROUP BY kind`,
    [namespace, now],
  );
  return rows.map((r) => ({ kind: r.kind, waiting: Number(r.waiting), due: Number(r.due) }));
}

/** Moves claimed rows on: a next due time, or completed when there is none. */
export async function advanceSchedules(db: pg.ClientBase, namespace: string, moves: readonly Advance[]): Promise<void> {
  if (moves.length === 0) return;
  await db.query(
    `UPDATE schedules s
        SET next_due_at = u.next,
            fire_count = u.fire_count,
            status = CASE WHEN u.next IS NULL THEN 'completed' ELSE 'active' END,
            finished_at = CASE WHEN u.next IS NULL THEN now() END,
            last_fired_at = CASE WHEN u.fired THEN now() ELSE s.last_fired_at END,
            updated_at = now()
       FROM unnest($2::text[], $3::timestamptz[], $4::int[], $5::bool[]) AS u(id, next, fire_count, fired)
      WHERE s.namespace = $1 AND s.id = u.id`,
    [
      namespace,
      moves.map((m) => m.id),
      moves.map((m) => m.next ?? null),
      moves.map((m) => m.fireCount),
      moves.map((m) => m.fired),
    ],
  );
}

export type CancelOutcome =
  | { outcome: 'cancelled'; row: ScheduleRow }
  | { outcome: 'already_cancelled'; row: ScheduleRow }
  | { outcome: 'completed'; row: ScheduleRow }
  | { outcome: 'not_found' };

/**
 * Cancels one active schedule. A row being fired right now is waited for (its lock), so the
 * answer says whether that fire happened.
 */
export async function cancelSchedule(
  db: pg.ClientBase | Pool,
  namespace: string,
  id: string,
  reason: string,
): Promise<CancelOutcome> {
  // The UPDATE sees the rows committed when it started; a request stored a moment later shows up
  // in the SELECT as active. That is not "completed": try the UPDATE again.
  for (let tries = 1; ; tries++) {
    const { rows } = await db.query<DbRow>(
      `UPDATE schedules
          SET status = 'cancelled', next_due_at = NULL, cancel_reason = $3, finished_at = now(), updated_at = now()
        WHERE namespace = $1 AND id = $2 AND status = 'active'
        RETURNING ${COLUMNS}`,
      [namespace, id, reason],
    );
    if (rows[0]) return { outcome: 'cancelled', row: fromDb(rows[0]) };
    const row = await getSchedule(db, namespace, id);
    if (!row) return { outcome: 'not_found' };
    if (row.status === 'active') {
      if (tries < 5) continue;
      throw new Error(`schedule ${id} stayed active through ${tries} cancels; try again`);
    }
    return { outcome: row.status === 'cancelled' ? 'already_cancelled' : 'completed', row };
  }
}

/** Cancels every listed schedule that is still active; returns the ids it cancelled. */
export async function cancelSchedules(
  db: pg.ClientBase,
  namespace: string,
  cancels: readonly { id: string; reason: string }[],
): Promise<string[]> {
  if (cancels.length === 0) return [];
  // Sorted, so two replicas cancelling overlapping sets lock rows in the same order.
  const sorted = [...cancels].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const { rows } = await db.query<{ id: string }>(
    `UPDATE schedules s
        SET status = 'cancelled', next_due_at = NULL, cancel_reason = u.reason, finished_at = now(), updated_at = now()
       FROM unnest($2::text[], $3::text[]) AS u(id, reason)
      WHERE s.namespace = $1 AND s.id = u.id AND s.status = 'active'
      RETURNING s.id`,
    [namespace, sorted.map((c) => c.id), sorted.map((c) => c.reason)],
  );
  return rows.map((r) => r.id);
}

/** What the audit trail needs of a cancelled schedule: the job it would have run. */
export interface CancelledSchedule {
  id: string;
  jobId: string;
  subject: string;
  reason: string;
  headers: [string, string][];
}

/**
 * The listed schedules that are cancelled, whether just now or earlier: a cancel request
 * delivered again after its commit sends their lifecycle events again (the audit trail keeps
 * each once, by its id).
 */
export async function cancelledAmong(
  db: pg.ClientBase | Pool,
  namespace: string,
  ids: readonly string[],
): Promise<CancelledSchedule[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{
    id: string;
    job_id: string;
    subject: string;
    cancel_reason: string | null;
    headers: [string, string][];
  }>(
    `SELECT id, job_id, subject, cancel_reason, headers FROM schedules
      WHERE namespace = $1 AND id = ANY($2::text[]) AND status = 'cancelled'`,
    [namespace, [...ids]],
  );
  return rows.map((r) => ({
    id: r.id,
    jobId: r.job_id,
    subject: r.subject,
    reason: r.cancel_reason ?? 'cancelled',
    headers: r.headers,
  }));
}

export async function getSchedule(
  db: pg.ClientBase | Pool,
  namespace: string,
  id: string,
): Promise<ScheduleRow | undefined> {
  const { rows } = await db.query<DbRow>(`SELECT ${COLUMNS} FROM schedules WHERE namespace = $1 AND id = $2`, [
    namespace,
    id,
  ]);
  return rows[0] ? fromDb(rows[0]) : undefined;
}

export interface ListFilter {
  status?: ScheduleStatus | undefined;
  kind?: ScheduleKind | undefined;
  limit: number;
  /** The id of the last row of the previous page. */
  after?: string | undefined;
}

/** Schedules in creation order, a page at a time; `next` is set when there may be more. */
export async function listSchedules(
  db: pg.ClientBase | Pool,
  namespace: string,
  filter: ListFilter,
): Promise<{ rows: ScheduleRow[]; next?: string }> {
  const { rows } = await db.query<DbRow>(
    `SELECT ${COLUMNS} FROM schedules s
      WHERE namespace = $1
        AND ($2::text IS NULL OR status = $2)
        AND ($3::text IS NULL OR kind = $3)
        AND ($4::text IS NULL OR (created_at, id) > (
              SELECT created_at, id FROM schedules WHERE namespace = $1 AND id = $4))
      ORDER BY created_at, id
      LIMIT $5`,
    [namespace, filter.status ?? null, filter.kind ?? null, filter.after ?? null, filter.limit + 1],
  );
  const page = rows.slice(0, filter.limit).map(fromDb);
  return rows.length > filter.limit ? { rows: page, next: page[page.length - 1]!.id } : { rows: page };
}

/** Removes finished schedules older than `before`; returns how many. */
export async function pruneFinished(db: pg.ClientBase | Pool, namespace: string, before: Date): Promise<number> {
  const result = await db.query(
    `DELETE FROM schedules WHERE namespace = $1 AND status <> 'active' AND finished_at < $2`,
    [namespace, before],
  );
  return result.rowCount ?? 0;
}
