import type { Priority, Topology } from '@redrive/messaging';
import type { Queryable } from '../audit/store.js';

// Jobs the retry-scheduler holds for later, per type and lane: one grouped count of its active
// `schedules` rows (on their partial index), in the database dlq-manager uses, which must be the
// scheduler's (as for a redrive's step reset) for these to be its counts.

export interface ScheduledCounts {
  /** Delayed jobs and delayed redrives not yet due. */
  delayed: number;
  /** Retries workers handed off to the scheduler. */
  retrying: number;
  /** Repeating and cron schedules (each fires jobs of the type). */
  repeating: number;
}

/** The counts by `<type>.<lane>`. */
export async function readScheduled(db: Queryable, topology: Topology): Promise<Map<string, ScheduledCounts>> {
  const { rows } = await db.query<{ subject: string; kind: string; count: number }>(
    `SELECT subject, kind, count(*)::int AS count FROM schedules
      WHERE namespace = $1 AND status = 'active' GROUP BY subject, kind`,
    [topology.options.prefix],
  );
  const out = new Map<string, ScheduledCounts>();
  for (const r of rows) {
    const target = topology.parseJobSubject(r.subject);
    if (!target) continue;
    const key = scheduledKey(target.type, target.priority);
    const c = out.get(key) ?? { delayed: 0, retrying: 0, repeating: 0 };
    if (r.kind === 'retry') c.retrying += r.count;
    else if (r.kind === 'repeat' || r.kind === 'cron') c.repeating += r.count;
    else c.delayed += r.count;
    out.set(key, c);
  }
  return out;
}

export const scheduledKey = (type: string, lane: Priority) => `${type}.${lane}`;
