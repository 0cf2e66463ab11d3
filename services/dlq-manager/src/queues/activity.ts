import type { Queryable } from '../audit/store.js';

// The rolling counts of the queue stats: jobs finished per type over the last minute and hour,
// read from audit_activity (10-second buckets the audit projection keeps, migration 0006), so a
// request reads at most 360 small rows per type and never scans audit_events.

/** Finished attempts of one type over a window. */
export interface ActivityCounts {
  succeeded: number;
  failed: number;
  deadLettered: number;
}

export interface TypeActivity {
  type: string;
  lastMinute: ActivityCounts;
  lastHour: ActivityCounts;
}

/** The bucket width of audit_activity: "the last minute" is the buckets that started in the last 60 s. */
export const ACTIVITY_BUCKET_SECONDS = 10;

/** Every type with activity in the last hour, with its counts over the last minute and hour. */
export async function readActivity(db: Queryable, now: Date): Promise<TypeActivity[]> {
  const { rows } = await db.query<{
    type: string;
    s_min: number;
    f_min: number;
    d_min: number;
    s_hour: number;
    f_hour: number;
    d_hour: number;
  }>(
    `SELECT type,
            coalesce(sum(succeeded) FILTER (WHERE bucket > $1::timestamptz - interval '60 seconds'), 0)::int AS s_min,
            coalesce(sum(failed) FILTER (WHERE bucket > $1::timestamptz - interval '60 seconds'), 0)::int AS f_min,
            coalesce(sum(dead_lettered) FILTER (WHERE bucket > $1::timestamptz - interval '60 seconds'), 0)::int AS d_min,
            sum(succeeded)::int AS s_hour, sum(failed)::int AS f_hour, sum(dead_lettered)::int AS d_hour
       FROM audit_activity
      WHERE bucket > $1::timestamptz - interval '1 hour'
      GROUP BY type`,
    [now.toISOString()],
  );
  return rows.map((r) => ({
    type: r.type,
    lastMinute: { succeeded: r.s_min, failed: r.f_min, deadLettered: r.d_min },
    lastHour: { succeeded: r.s_hour, failed: r.f_hour, deadLettered: r.d_hour },
  }));
}

/** Removes buckets older than `before` (the retention cleanup); returns how many went. */
export async function pruneActivity(db: Queryable, before: Date): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM audit_activity WHERE bucket < $1', [before.toISOString()]);
  return rowCount ?? 0;
}
