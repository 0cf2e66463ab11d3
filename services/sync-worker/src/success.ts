import { createUuidV7, type EventPublisher } from '@redrive/messaging';
import { skip, type Run } from './carry.js';
import type { Delivery, DeliveryTracker } from './deliveries.js';
import { usedSteps } from './job-context.js';
import type { WorkerMetrics } from './metrics.js';
import type { CompletionsPort, GuardsPort, StepsPort } from './ports.js';
import { lifeField, resendSuccess, runKeyOf, storeTerminalEvent, succeededEventId } from './terminal-events.js';

/**
 * What follows a handler that returned: the job's one success recorded (durably, first wins, for
 * a keyed job), its success event stored, its Redis marker set, and only then the ack. Resolves
 * whether the run's count is still open (so the caller ends it) or was ended with the marker.
 */
export function createSuccess(deps: {
  events: EventPublisher;
  completions?: CompletionsPort | undefined;
  guards?: GuardsPort | undefined;
  steps?: StepsPort | undefined;
  completedTtlMs: number;
  metrics: WorkerMetrics;
  tracker: DeliveryTracker;
}) {
  const { metrics, tracker } = deps;
  // A success event's id is fixed before its first publish, so a publish tried again keeps it.
  const newEventId = createUuidV7();

  return async function succeed(
    d: Delivery,
    run: Run,
    facts: { keyed: boolean; durationMs: number; startedAt: Date; pending: Promise<unknown>[]; runCounted: boolean },
  ): Promise<{ runCounted: boolean }> {
    const { meta, attempt, traceId, log } = run;
    const { keyed, durationMs } = facts;
    if (keyed) {
      const rec = await deps.completions!.record({ jobId: meta.jobId, attempt, at: new Date().toISOString() });
      if (!rec.recorded) {
        // Another run of this job (a redelivery after this worker looked stalled) succeeded
        // first: its success is the job's one success, this run is recorded as a duplicate.
        // That run's success event is sent again (same id), in case it died before sending it.
        const first = rec.existing ?? { attempt, at: new Date().toISOString() };
        if (!(await resendSuccess(deps.events, d, meta, first, traceId, log))) return facts;
        await skip(deps, d, run, 'completed_by_another_run');
        log.warn('job ran again after another run had completed it; only the first success counts');
        return facts;
      }
    }
    const success = {
      kind: 'attempt.succeeded',
      id: keyed ? succeededEventId(meta.jobId) : newEventId(),
      jobId: meta.jobId,
      type: d.type,
      attempt,
      traceId,
      durationMs,
      ...lifeField(meta),
      data: { startedAt: facts.startedAt.toISOString() },
    } as const;
    const stored = await storeTerminalEvent(deps.events, d, success, log);
    let runCounted = facts.runCounted;
    // The Redis marker only after the success is in the audit trail: a worker killed in
    // between runs the job again (at least once) rather than skip a job with no outcome.
    if (stored && runCounted) {
      await deps.guards!.runs.end(runKeyOf(meta), keyed ? undefined : deps.completedTtlMs);
      runCounted = false;
    }
    await Promise.all(facts.pending);
    if (stored && tracker.settle(d, 'ack')) {
      metrics.processed.inc({ type: d.type, outcome: 'succeeded' });
      metrics.duration.observe({ type: d.type, outcome: 'succeeded' }, durationMs / 1000);
      // Since this message entered JOBS (its acceptance, or the scheduler's fire of a delayed
      // job or a retry): the wait in the queue, the run and the success's store together.
      const enqueuedMs = d.msg.info.timestampNanos / 1e6;
      metrics.latency.observe({ type: d.type }, Math.max(0, Date.now() - enqueuedMs) / 1000);
      log.info({ ms: durationMs }, 'job succeeded');
    }
    // A finished job's checkpoints have no further use: removed by job id (its primary key's
    // prefix), only for a run that used steps, and only once its success is stored, so a worker
    // killed before that resumes with them. A failure leaves them (the job still succeeded);
    // a redrive with steps "reset" or the next success removes them.
    if (stored && deps.steps && usedSteps(d.abort)) {
      try {
        const cleared = await deps.steps.clear(meta.jobId);
        log.debug({ cleared }, 'step checkpoints of the finished job removed');
      } catch (err) {
        log.warn({ err }, 'step checkpoints of the finished job not removed');
      }
    }
    return { runCounted };
  };
}
