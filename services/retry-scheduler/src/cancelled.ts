import { H, type EventInput, type EventPublisher, type Topology } from '@redrive/messaging';
import type { CancelledSchedule } from './schedules.js';

/**
 * The `job.cancelled` event of a cancelled schedule: the job it would have run (a delayed job, a
 * retry handed off by a worker, a delayed redrive, or a repeat) ends there, and the audit trail
 * must say so. Its id is derived from the schedule, so sending it again is harmless.
 */
export function cancelledEvent(row: CancelledSchedule, topology: Topology): EventInput & { id: string } {
  const life = row.headers.find(([k]) => k.toLowerCase() === H.life.toLowerCase())?.[1];
  return {
    kind: 'job.cancelled',
    id: `cancelled:${topology.streams.schedule}:${row.id}`,
    jobId: row.jobId,
    type: topology.parseJobSubject(row.subject)?.type ?? 'unknown',
    reason: row.reason,
    ...(life ? { life } : {}),
    data: { scheduleId: row.id },
  };
}

/** Publishes the `job.cancelled` events of `rows`; resolves once JetStream stored every one. */
export async function publishCancelled(
  events: EventPublisher,
  topology: Topology,
  rows: readonly CancelledSchedule[],
): Promise<void> {
  await Promise.all(rows.map((row) => events.publish(cancelledEvent(row, topology))));
}
