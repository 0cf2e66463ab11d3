import { PRIORITIES } from '@redrive/messaging';
import { Counter, Gauge, Histogram, zeroSeries, type Registry } from '@redrive/telemetry';

/** How a delivery ended, the same values in the count and the run time. */
export const OUTCOMES = ['succeeded', 'retried', 'dead_lettered', 'skipped'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The sync-worker's own metrics, registered on the process registry. */
export function createWorkerMetrics(registry: Registry, served: { types: readonly string[]; concurrency: number }) {
  const metrics = {
    processed: new Counter({
      name: 'redrive_worker_jobs_total',
      help: 'Job deliveries finished by this worker, by type and outcome (succeeded, retried, dead_lettered, skipped)',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'redrive_worker_job_seconds',
      help: 'Handler run time, by type and outcome (succeeded, retried, dead_lettered; a skipped delivery runs nothing)',
      labelNames: ['type', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'redrive_worker_job_latency_seconds',
      help: 'From a job entering JOBS (accepted, or fired by the retry-scheduler) to its success stored and acked, by type',
      labelNames: ['type'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600],
      registers: [registry],
    }),
    inFlight: new Gauge({ name: 'redrive_worker_jobs_in_flight', help: 'Jobs running now', registers: [registry] }),
    capacity: new Gauge({
      name: 'redrive_worker_capacity',
      help: 'Jobs this worker may run at once (WORKER_CONCURRENCY), one pool shared by the priority lanes',
      registers: [registry],
    }),
    busy: new Gauge({
      name: 'redrive_worker_busy',
      help: 'Run slots in use, by the priority lane of the job holding them; sum by lane over redrive_worker_capacity is utilisation',
      labelNames: ['lane'],
      registers: [registry],
    }),
    held: new Gauge({
      name: 'redrive_worker_jobs_held',
      help: 'Jobs this worker holds on a timer: a short retry delay or a limit',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'redrive_worker_duplicate_deliveries_total',
      help: 'Second deliveries of a message this worker already held, ignored',
      labelNames: ['type'],
      registers: [registry],
    }),
    heldBack: new Counter({
      name: 'redrive_worker_jobs_held_back_total',
      help: 'Runs postponed by a rate or concurrency limit (not counted as attempts)',
      labelNames: ['type'],
      registers: [registry],
    }),
  };
  const types = served.types;
  zeroSeries(metrics.processed, { type: types, outcome: OUTCOMES });
  zeroSeries(metrics.duration, { type: types, outcome: OUTCOMES.filter((o) => o !== 'skipped') });
  zeroSeries(metrics.latency, { type: types });
  zeroSeries(metrics.duplicates, { type: types });
  zeroSeries(metrics.heldBack, { type: types });
  metrics.capacity.set(served.concurrency);
  for (const lane of PRIORITIES) metrics.busy.set({ lane }, 0);
  return metrics;
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
