import { Counter, Gauge, Histogram, zeroSeries, type Registry } from '@redrive/telemetry';
import { SCHEDULE_KINDS, type ScheduleKind } from './schedules.js';

/** Active schedules by kind, as the backlog gauges read them (schedules.ts countActive). */
export type Backlog = readonly { kind: ScheduleKind; waiting: number; due: number }[];

export interface BacklogSource {
  /** Reads the backlog; called on scrape, so it should cache (cachedRead). */
  read(): Promise<Backlog>;
  onError(err: unknown): void;
}

/** The retry-scheduler's own metrics, registered on the process registry. */
export function createSchedulerMetrics(registry: Registry, backlog?: BacklogSource) {
  const kinds = SCHEDULE_KINDS;
  // Both backlog gauges come from one grouped count, read when either is scraped.
  let latest: Backlog = [];
  const refresh = async () => {
    if (!backlog) return;
    try {
      latest = await backlog.read();
    } catch (err) {
      backlog.onError(err);
    }
  };
  const fill = (gauge: Gauge, pick: (b: Backlog[number]) => number) => {
    for (const kind of kinds)
      gauge.set({ kind }, pick(latest.find((b) => b.kind === kind) ?? { kind, waiting: 0, due: 0 }));
  };
  const metrics = {
    waiting: new Gauge({
      name: 'redrive_scheduler_schedules_waiting',
      help: 'Active schedules in Postgres waiting for their next fire, by kind (kind="retry": retries handed off by workers)',
      labelNames: ['kind'],
      registers: [registry],
      async collect() {
        await refresh();
        fill(this, (b) => b.waiting);
      },
    }),
    overdue: new Gauge({
      name: 'redrive_scheduler_schedules_overdue',
      help: 'Active schedules whose fire is due and not yet published, by kind; above zero for long, the scheduler is behind',
      labelNames: ['kind'],
      registers: [registry],
      async collect() {
        await refresh();
        fill(this, (b) => b.due);
      },
    }),
    lateness: new Histogram({
      name: 'redrive_scheduler_fire_lateness_seconds',
      help: 'How late a fire was published: the PubAck time minus the due time, by schedule kind',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    due: new Counter({
      name: 'redrive_scheduler_schedules_due_total',
      help: 'Due fires claimed from Postgres, by schedule kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    fired: new Counter({
      name: 'redrive_scheduler_schedules_fired_total',
      help: 'Fires published to JOBS and acknowledged, by schedule kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    skipped: new Counter({
      name: 'redrive_scheduler_fires_skipped_total',
      help: 'Missed fires of repeating schedules dropped by their skip policy',
      labelNames: ['kind'],
      registers: [registry],
    }),
    republished: new Counter({
      name: 'redrive_scheduler_fires_republished_total',
      help: 'Fires JetStream already held (published before a crash, not yet committed): dropped by Nats-Msg-Id',
      registers: [registry],
    }),
    publishFailures: new Counter({
      name: 'redrive_scheduler_publish_failures_total',
      help: 'Fires JetStream did not acknowledge; the row stays due and is tried again',
      registers: [registry],
    }),
    cancelled: new Counter({
      name: 'redrive_scheduler_schedules_cancelled_total',
      help: 'Schedules cancelled, by who asked: api (DELETE /v1/schedules/:id), handler (ctx.stopRepeat()), request (schedule.cancel)',
      labelNames: ['by'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'redrive_scheduler_requests_total',
      help: 'Requests read from the SCHEDULE stream, by kind and outcome (stored, duplicate, no_change, rejected)',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    loopErrors: new Counter({
      name: 'redrive_scheduler_loop_errors_total',
      help: 'Firing rounds that failed (Postgres or NATS unavailable) and were retried after a pause',
      registers: [registry],
    }),
  };
  zeroSeries(metrics.lateness, { kind: kinds });
  zeroSeries(metrics.due, { kind: kinds });
  zeroSeries(metrics.fired, { kind: kinds });
  zeroSeries(metrics.skipped, { kind: kinds });
  zeroSeries(metrics.cancelled, { by: ['api', 'handler', 'request'] });
  zeroSeries(metrics.requests, { kind: kinds, outcome: ['stored', 'duplicate'] });
  zeroSeries(metrics.requests, { kind: ['cancel'], outcome: ['stored', 'no_change'] });
  zeroSeries(metrics.requests, { kind: ['invalid'], outcome: ['rejected'] });
  return metrics;
}

export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;
