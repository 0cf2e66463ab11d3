import { DEAD_LETTER_REASONS, type Priority } from '@redrive/messaging';
import { Counter, Gauge, Histogram, zeroSeries, type Registry } from '@redrive/telemetry';
import type { ConsumerBacklog, LaneStats } from './queues/stats.js';

/** Unresolved dead letters of one type and reason. */
export interface UnresolvedCount {
  type: string;
  reason: string;
  count: number;
}

/**
 * Where the gauges computed on scrape read from; each read should be cached (cachedRead), so a
 * scrape costs a few JetStream calls and one grouped count at most, never one per job.
 */
export interface GaugeSources {
  queues(): Promise<readonly LaneStats[]>;
  unresolved(): Promise<readonly UnresolvedCount[]>;
  auditLag(): Promise<ConsumerBacklog>;
  /** Whether a type's lane is paused now (the PAUSES bucket dlq-manager watches). */
  paused?(type: string, lane: Priority): boolean;
  onError(source: 'queues' | 'unresolved' | 'audit', err: unknown): void;
  now?: () => number;
}

const ADVISORY_OUTCOMES = [
  'dead_lettered',
  'already_dead_lettered',
  'already_succeeded',
  'deferred',
  'ignored',
  'refuted',
  'unconfirmed',
] as const;

const ageSeconds = (at: Date | undefined, now: number) => (at ? Math.max(0, (now - at.getTime()) / 1000) : 0);

/** dlq-manager's own metrics, and the queue, DLQ and audit gauges, registered on the process registry. */
export function createDlqMetrics(registry: Registry, sources?: GaugeSources) {
  const now = sources?.now ?? Date.now;
  /** A gauge whose series are replaced by each read; a failed read keeps the last values. */
  const read = async <T>(source: 'queues' | 'unresolved' | 'audit', get: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await get();
    } catch (err) {
      sources?.onError(source, err);
      return undefined;
    }
  };
  const laneGauge = (name: string, help: string, value: (s: LaneStats, at: number) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['type', 'lane'],
      registers: [registry],
      async collect() {
        if (!sources) return;
        const stats = await read('queues', sources.queues);
        if (!stats) return;
        // Replaced whole: a lane whose consumer was deleted leaves no stale series.
        this.reset();
        const at = now();
        for (const s of stats) this.set({ type: s.type, lane: s.lane }, value(s, at));
      },
    });
  // A (type, reason) once seen stays at zero after its last dead letter is resolved.
  const unresolvedSeen = new Set<string>();
  const auditGauge = (name: string, help: string, value: (b: ConsumerBacklog, at: number) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        if (!sources) return;
        const lag = await read('audit', sources.auditLag);
        if (lag) this.set(value(lag, now()));
      },
    });

  const metrics = {
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
    queueWaiting: laneGauge(
      'redrive_queue_waiting',
      'Jobs stored in JOBS and not yet delivered to a worker, by type and priority lane (num_pending of its worker consumer)',
      (s) => s.waiting,
    ),
    queueRunning: laneGauge(
      'redrive_queue_running',
      'Jobs delivered to a worker and not yet acknowledged (running, or held for a short wait), by type and lane (num_ack_pending)',
      (s) => s.running,
    ),
    queueRedelivered: laneGauge(
      'redrive_queue_redelivered',
      'Unacknowledged jobs delivered more than once (a retry waiting on the consumer, or a worker lost), by type and lane (num_redelivered)',
      (s) => s.redelivered,
    ),
    queueOldest: laneGauge(
      'redrive_queue_oldest_waiting_seconds',
      'Age of the oldest job of the lane not yet acknowledged (waiting or running), by type and lane; 0 when the lane is empty',
      (s, at) => ageSeconds(s.oldestAt, at),
    ),
    queuePaused: laneGauge(
      'redrive_queue_paused',
      '1 while the type or this lane of it is paused (no worker starts its jobs; they wait in JOBS), else 0, by type and lane',
      (s) => (sources?.paused?.(s.type, s.lane) ? 1 : 0),
    ),
    unresolved: new Gauge({
      name: 'redrive_dlq_unresolved',
      help: 'Dead letters in Postgres neither resolved nor redriven, by type and reason',
      labelNames: ['type', 'reason'],
      registers: [registry],
      async collect() {
        if (!sources) return;
        const counts = await read('unresolved', sources.unresolved);
        if (!counts) return;
        for (const key of unresolvedSeen) {
          const [type, reason] = JSON.parse(key) as [string, string];
          this.set({ type, reason }, 0);
        }
        for (const c of counts) {
          unresolvedSeen.add(JSON.stringify([c.type, c.reason]));
          this.set({ type: c.type, reason: c.reason }, c.count);
        }
      },
    }),
    auditLag: auditGauge(
      'redrive_audit_lag_events',
      'Lifecycle events in EVENTS not yet projected into the Postgres audit trail (pending and unacknowledged messages of the dlq-manager-audit consumer)',
      (b) => b.waiting + b.running,
    ),
    auditLagSeconds: auditGauge(
      'redrive_audit_lag_seconds',
      'Age of the oldest lifecycle event not yet projected into Postgres; 0 when the audit trail is current',
      (b, at) => ageSeconds(b.oldestAt, at),
    ),
  };
  zeroSeries(metrics.recorded, { reason: DEAD_LETTER_REASONS });
  zeroSeries(metrics.advisories, { kind: ['max_deliveries', 'terminated'], outcome: ADVISORY_OUTCOMES });
  zeroSeries(metrics.auditEvents, { outcome: ['inserted', 'duplicate', 'invalid'] });
  zeroSeries(metrics.storeRetries, { loop: ['recorder', 'advisories', 'audit'] });
  zeroSeries(metrics.changes, { op: ['resolve', 'delete', 'cleanup', 'redrive'] });
  return metrics;
}

export type DlqMetrics = ReturnType<typeof createDlqMetrics>;
