import type { DeadLetterReason } from '@redrive/messaging';
import type { Queryable } from '../audit/store.js';

/** A dead letter as recorded from the DLQ stream. */
export interface NewDeadLetter {
  jobId: string;
  type: string;
  originalStream: string;
  originalSubject: string;
  originalSeq: number;
  dlqStream: string;
  dlqSeq: number;
  reason: DeadLetterReason;
  errorClass: string | null;
  error: string | null;
  attempts: number;
  /** null when the original was gone before it could be copied. */
  payload: Uint8Array | null;
  headers: Record<string, string>;
  traceId: string | null;
  createdAt: Date;
}

/** A stored dead letter. */
export interface DeadLetter extends NewDeadLetter {
  id: number;
  recordedAt: Date;
  resolvedAt: Date | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  redriveCount: number;
  lastRedrivenAt: Date | null;
  lastRedrivenBy: string | null;
}

/** Which dead letters an operation applies to; every field narrows the set. */
export interface DeadLetterFilter {
  type?: string;
  reason?: DeadLetterReason;
  errorClass?: string;
  resolved?: boolean;
  /** Created at or after (RFC 3339). */
  from?: string;
  /** Created before (RFC 3339). */
  to?: string;
  /** Text the error contains (case-insensitive). */
  q?: string;
  jobId?: string;
}

/** Builds the WHERE clause of a filter, with its parameters numbered from `first`. */
export function filterSql(filter: DeadLetterFilter, first = 1): { where: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    parts.push(sql(`$${first + params.length - 1}`));
  };
  if (filter.type !== undefined) add((p) => `type = ${p}`, filter.type);
  if (filter.reason !== undefined) add((p) => `reason = ${p}`, filter.reason);
  if (filter.errorClass !== undefined) add((p) => `error_class = ${p}`, filter.errorClass);
  if (filter.resolved !== undefined) parts.push(filter.resolved ? 'resolved_at IS NOT NULL' : 'resolved_at IS NULL');
  if (filter.from !== undefined) add((p) => `created_at >= ${p}`, filter.from);
  if (filter.to !== undefined) add((p) => `created_at < ${p}`, filter.to);
  if (filter.jobId !== undefined) add((p) => `job_id = ${p}`, filter.jobId);
  // The text is matched literally: LIKE's own wildcards in it are escaped.
  if (filter.q !== undefined) add((p) => `error ILIKE ${p}`, `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  return { where: parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '', params };
}

interface Row {
  id: string;
  job_id: string;
  type: string;
  original_stream: string;
  original_subject: string;
  original_seq: string;
  dlq_stream: string;
  dlq_seq: string;
  reason: DeadLetterReason;
  error_class: string | null;
  error: string | null;
  attempts: number;
  payload: Buffer | null;
  headers: Record<string, string>;
  trace_id: string | null;
  created_at: Date;
  recorded_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolution_note: string | null;
  redrive_count: number;
  last_redriven_at: Date | null;
  last_redriven_by: string | null;
}

const COLUMNS = `id, job_id, type, original_stream, original_subject, original_seq, dlq_stream, dlq_seq, reason,
  error_class, error, attempts, payload, headers, trace_id, created_at, recorded_at, resolved_at, resolved_by,
  resolution_note, redrive_count, last_redriven_at, last_redriven_by`;
// Lists leave the payload out: it can be large, and only the full view shows it.
const LIST_COLUMNS = COLUMNS.replace('payload,', 'NULL::bytea AS payload, payload IS NOT NULL AS has_payload,');

function fromRow(r: Row): DeadLetter {
  return {
    id: Number(r.id),
    jobId: r.job_id,
    type: r.type,
    originalStream: r.original_stream,
    originalSubject: r.original_subject,
    originalSeq: Number(r.original_seq),
    dlqStream: r.dlq_stream,
    dlqSeq: Number(r.dlq_seq),
    reason: r.reason,
    errorClass: r.error_class,
    error: r.error,
    attempts: r.attempts,
    payload: r.payload ? new Uint8Array(r.payload) : null,
    headers: r.headers,
    traceId: r.trace_id,
    createdAt: r.created_at,
    recordedAt: r.recorded_at,
    resolvedAt: r.resolved_at,
    resolvedBy: r.resolved_by,
    resolutionNote: r.resolution_note,
    redriveCount: r.redrive_count,
    lastRedrivenAt: r.last_redriven_at,
    lastRedrivenBy: r.last_redriven_by,
  };
}

/** Inserts a dead letter unless one for the same original message exists; returns the new id, if any. */
export async function insertDeadLetter(db: Queryable, dl: NewDeadLetter): Promise<number | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO dead_letters (job_id, type, original_stream, original_subject, original_seq, dlq_stream, dlq_seq,
       reason, error_class, error, attempts, payload, payload_available, headers, trace_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16)
     ON CONFLICT ON CONSTRAINT dead_letters_original_key DO NOTHING
     RETURNING id`,
    [
      dl.jobId,
      dl.type,
      dl.originalStream,
      dl.originalSubject,
      dl.originalSeq,
      dl.dlqStream,
      dl.dlqSeq,
      dl.reason,
      dl.errorClass,
      dl.error,
      dl.attempts,
      dl.payload ? Buffer.from(dl.payload) : null,
      dl.payload !== null,
      JSON.stringify(dl.headers),
      dl.traceId,
      dl.createdAt,
    ],
  );
  return rows[0] ? Number(rows[0].id) : undefined;
}

/** Whether a dead letter exists for this original message. */
export async function deadLetterExists(db: Queryable, stream: string, seq: number): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM dead_letters WHERE original_stream = $1 AND original_seq = $2', [
    stream,
    seq,
  ]);
  return (rowCount ?? 0) > 0;
}

/** One page of dead letters, newest first, after the cursor id (exclusive). */
export async function listDeadLetters(
  db: Queryable,
  filter: DeadLetterFilter,
  page: { limit: number; before?: number },
): Promise<(DeadLetter & { payloadAvailable: boolean })[]> {
  const { where, params } = filterSql(filter);
  const cursor = page.before !== undefined ? `${where ? `${where} AND` : 'WHERE'} id < $${params.length + 1}` : where;
  const all = page.before !== undefined ? [...params, page.before] : params;
  const { rows } = await db.query<Row & { has_payload: boolean }>(
    `SELECT ${LIST_COLUMNS} FROM dead_letters ${cursor} ORDER BY id DESC LIMIT $${all.length + 1}`,
    [...all, page.limit],
  );
  return rows.map((r) => ({ ...fromRow(r), payloadAvailable: r.has_payload }));
}

/** Ids of the dead letters a filter matches, oldest first, after `after` (exclusive). */
export async function matchingIds(
  db: Queryable,
  filter: DeadLetterFilter,
  page: { limit: number; after: number },
): Promise<number[]> {
  const { where, params } = filterSql(filter);
  const cursor = `${where ? `${where} AND` : 'WHERE'} id > $${params.length + 1}`;
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM dead_letters ${cursor} ORDER BY id LIMIT $${params.length + 2}`,
    [...params, page.after, page.limit],
  );
  return rows.map((r) => Number(r.id));
}

/** The highest id a filter matches (0 for none). */
export async function lastMatchingId(db: Queryable, filter: DeadLetterFilter): Promise<number> {
  const { where, params } = filterSql(filter);
  const { rows } = await db.query<{ id: string | null }>(`SELECT max(id) AS id FROM dead_letters ${where}`, params);
  return Number(rows[0]?.id ?? 0);
}

/** How many dead letters a filter matches, and how many of them have no payload. */
export async function countMatching(
  db: Queryable,
  filter: DeadLetterFilter,
): Promise<{ count: number; payloadUnavailable: number }> {
  const { where, params } = filterSql(filter);
  const { rows } = await db.query<{ count: number; unavailable: number }>(
    `SELECT count(*)::int AS count, count(*) FILTER (WHERE payload IS NULL)::int AS unavailable FROM dead_letters ${where}`,
    params,
  );
  return { count: rows[0]?.count ?? 0, payloadUnavailable: rows[0]?.unavailable ?? 0 };
}

/** One dead letter with its payload; `forUpdate` locks it until the transaction ends. */
export async function getDeadLetter(
  db: Queryable,
  id: number,
  opts: { forUpdate?: boolean } = {},
): Promise<DeadLetter | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM dead_letters WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Marks a dead letter resolved (a later resolve overwrites the note and who). */
export async function markResolved(
  db: Queryable,
  id: number,
  by: string,
  note: string | null,
  at: Date,
): Promise<DeadLetter | undefined> {
  const { rows } = await db.query<Row>(
    `UPDATE dead_letters SET resolved_at = $2, resolved_by = $3, resolution_note = $4 WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, at, by, note],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Counts a redrive; an unresolved entry is resolved by it (the job is running again). */
export async function markRedriven(db: Queryable, id: number, by: string, note: string | null, at: Date) {
  await db.query(
    `UPDATE dead_letters SET redrive_count = redrive_count + 1, last_redriven_at = $2, last_redriven_by = $3,
       resolved_at = COALESCE(resolved_at, $2), resolved_by = COALESCE(resolved_by, $3),
       resolution_note = COALESCE(resolution_note, $4)
     WHERE id = $1`,
    [id, at, by, note ?? 'redriven'],
  );
}

export async function deleteDeadLetter(db: Queryable, id: number): Promise<DeadLetter | undefined> {
  const { rows } = await db.query<Row>(`DELETE FROM dead_letters WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Removes resolved dead letters resolved before `cutoff`; returns what was removed (no payloads). */
export async function deleteResolvedBefore(
  db: Queryable,
  cutoff: Date,
  limit: number,
): Promise<{ id: number; jobId: string; type: string; dlqStream: string; dlqSeq: number; resolvedAt: Date }[]> {
  const { rows } = await db.query<{
    id: string;
    job_id: string;
    type: string;
    dlq_stream: string;
    dlq_seq: string;
    resolved_at: Date;
  }>(
    `DELETE FROM dead_letters WHERE id IN (
       SELECT id FROM dead_letters WHERE resolved_at IS NOT NULL AND resolved_at < $1 ORDER BY resolved_at LIMIT $2
     ) RETURNING id, job_id, type, dlq_stream, dlq_seq, resolved_at`,
    [cutoff, limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    jobId: r.job_id,
    type: r.type,
    dlqStream: r.dlq_stream,
    dlqSeq: Number(r.dlq_seq),
    resolvedAt: r.resolved_at,
  }));
}

/** Unresolved dead letters by type and reason: one grouped count on the partial index of unresolved rows. */
export async function countUnresolved(db: Queryable): Promise<{ type: string; reason: string; count: number }[]> {
  const { rows } = await db.query<{ type: string; reason: string; count: number }>(
    `SELECT type, reason, count(*)::int AS count FROM dead_letters WHERE resolved_at IS NULL GROUP BY type, reason`,
  );
  return rows;
}

export interface DeadLetterStats {
  total: number;
  unresolved: number;
  oldestUnresolvedAt: string | null;
  oldestUnresolvedAgeSeconds: number | null;
  byType: { type: string; count: number; unresolved: number }[];
  byReason: { reason: string; count: number; unresolved: number }[];
  byClass: { errorClass: string | null; count: number; unresolved: number }[];
  /** Dead letters created per hour over the window, oldest hour first, hours with none included. */
  perHour: { hour: string; count: number }[];
}

export async function readStats(db: Queryable, hours: number, now: Date): Promise<DeadLetterStats> {
  const group = async <K extends string>(column: string, key: K) => {
    const { rows } = await db.query<{ k: string | null; count: number; unresolved: number }>(
      `SELECT ${column} AS k, count(*)::int AS count, count(*) FILTER (WHERE resolved_at IS NULL)::int AS unresolved
         FROM dead_letters GROUP BY 1 ORDER BY 2 DESC, 1`,
    );
    return rows.map(
      (r) =>
        ({ [key]: r.k, count: r.count, unresolved: r.unresolved }) as Record<K, string> & {
          count: number;
          unresolved: number;
        },
    );
  };
  const [totals, byType, byReason, byClass, perHour] = await Promise.all([
    db.query<{ total: number; unresolved: number; oldest: Date | null }>(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE resolved_at IS NULL)::int AS unresolved,
              min(created_at) FILTER (WHERE resolved_at IS NULL) AS oldest
         FROM dead_letters`,
    ),
    group('type', 'type'),
    group('reason', 'reason'),
    group('error_class', 'errorClass'),
    db.query<{ hour: Date; count: number }>(
      `SELECT h AS hour, count(d.id)::int AS count
         FROM generate_series(date_trunc('hour', $1::timestamptz) - make_interval(hours => $2 - 1),
                              date_trunc('hour', $1::timestamptz), interval '1 hour') AS h
         LEFT JOIN dead_letters d ON d.created_at >= h AND d.created_at < h + interval '1 hour'
        GROUP BY h ORDER BY h`,
      [now, hours],
    ),
  ]);
  const t = totals.rows[0]!;
  return {
    total: t.total,
    unresolved: t.unresolved,
    oldestUnresolvedAt: t.oldest ? t.oldest.toISOString() : null,
    oldestUnresolvedAgeSeconds: t.oldest ? Math.max(0, Math.round((now.getTime() - t.oldest.getTime()) / 1000)) : null,
    byType,
    byReason,
    byClass: byClass as unknown as DeadLetterStats['byClass'],
    perHour: perHour.rows.map((r) => ({ hour: r.hour.toISOString(), count: r.count })),
  };
}
