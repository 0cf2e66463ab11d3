import { PRIORITIES } from '@redrive/messaging';
import { Counter, Histogram, zeroSeries, type Registry } from '@redrive/telemetry';

/** The error statuses a job submission can be answered with (routes/jobs.ts), counted from zero. */
const REFUSALS = ['400', '401', '403', '413', '415', '422', '503'] as const;
/** The job routes as callers write them (the route label). */
export const JOB_ROUTES = ['/v1/jobs', '/v1/jobs:batch'] as const;
/** Job types whose series are created ahead of their first use; producers cannot inflate it past this. */
const MAX_TYPE_SERIES = 1_000;

/** Intake's metrics, registered on the process registry. */
export function createIntakeMetrics(registry: Registry) {
  const accepted = new Counter({
    name: 'redrive_intake_jobs_accepted_total',
    help: 'Jobs stored in JOBS after a PubAck, by type, priority and whether JetStream saw a duplicate',
    labelNames: ['type', 'priority', 'duplicate'],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'redrive_intake_requests_refused_total',
    help: 'Job submissions answered with an error status, by status',
    labelNames: ['status'],
    registers: [registry],
  });
  const publishSeconds = new Histogram({
    name: 'redrive_intake_request_seconds',
    help: 'Time to answer a job submission, PubAck included, by route (/v1/jobs, /v1/jobs:batch)',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  zeroSeries(refused, { status: REFUSALS });
  zeroSeries(publishSeconds, { route: JOB_ROUTES });
  // Job types are not known in advance (only served ones are accepted): a type's series start at
  // zero the first time it is seen, so its first duplicate, or its first job in another lane, is
  // a change rate() sees.
  const seen = new Set<string>();
  const seeType = (type: string) => {
    if (seen.has(type) || seen.size >= MAX_TYPE_SERIES) return;
    seen.add(type);
    zeroSeries(accepted, { type: [type], priority: PRIORITIES, duplicate: ['false', 'true'] });
  };
  return { accepted, refused, publishSeconds, seeType };
}
