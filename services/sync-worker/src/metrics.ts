import { Counter, Gauge, Histogram, type Registry } from '@redrive/telemetry';

/** The sync-worker's own metrics, registered on the process registry. */
export function createWorkerMetrics(registry: Registry) {
  return {
    processed: new Counter({
      name: 'redrive_worker_jobs_total',
      help: 'Job deliveries finished by this worker, by type and outcome (succeeded, retried, dead_lettered, skipped)',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'redrive_worker_job_seconds',
      help: 'Handler run time, by type and outcome',
      labelNames: ['type', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    inFlight: new Gauge({ name: 'redrive_worker_jobs_in_flight', help: 'Jobs running now', registers: [registry] }),
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
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
