import { Counter, Histogram, type Registry } from '@redrive/telemetry';

/** dlq-manager's own metrics, registered on the process registry. */
export function createDlqMetrics(registry: Registry) {
  return {
    recorded: new Counter({
      name: 'redrive_dlq_dead_letters_recorded_total',
      help: 'Dead letters recorded in Postgres, by reason (replays that found the entry already there are not counted)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    advisories: new Counter({
      name: 'redrive_dlq_advisories_total',
      help: 'JetStream advisories handled, by kind and outcome (dead_lettered, already_dead_lettered, already_succeeded, deferred, ignored; refuted: contradicted by the consumer it names; unconfirmed: asked again later)',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    auditEvents: new Counter({
      name: 'redrive_dlq_audit_events_total',
      help: 'Lifecycle events projected into Postgres, by outcome (inserted, duplicate, invalid)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    auditBatchSeconds: new Histogram({
      name: 'redrive_dlq_audit_batch_seconds',
      help: 'Time to write one batch of lifecycle events, retries included',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
      registers: [registry],
    }),
    storeRetries: new Counter({
      name: 'redrive_dlq_store_retries_total',
      help: 'Writes retried because Postgres was unavailable, by loop (recorder, advisories, audit)',
      labelNames: ['loop'],
      registers: [registry],
    }),
    changes: new Counter({
      name: 'redrive_dlq_admin_changes_total',
      help: 'Changes made through the admin API or NATS endpoints, by operation',
      labelNames: ['op'],
      registers: [registry],
    }),
  };
}

export type DlqMetrics = ReturnType<typeof createDlqMetrics>;
