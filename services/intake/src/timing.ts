import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { publishJob, publishScheduleRequest, parseRfc3339, type Topology } from '@redrive/messaging';
import { firstFire, parseRepeatSpec, repeatSpecToJson, RepeatSpecError, type RepeatSpec } from '@redrive/recurrence';
import type { Context } from '@redrive/telemetry';

/** When a submitted job runs, as the producer asked (`delay` ms, `runAt`, `repeat`). */
export interface TimingRequest {
  delay?: number;
  runAt?: string;
  repeat?: unknown;
}

/**
 * Where a job goes: straight to JOBS (`now`, or `notBefore` for a short delay that the worker
 * holds until due), or to the retry-scheduler (`later` for a long delay, `repeat` always).
 */
export type Timing =
  | { kind: 'now' }
  | { kind: 'notBefore'; at: Date }
  | { kind: 'later'; at: Date }
  | { kind: 'repeat'; spec: RepeatSpec; first: Date; startAt: Date | undefined };

/** A timing request that cannot be honoured; the message names the field. */
export class TimingError extends Error {
  override readonly name = 'TimingError';
}

/** How far in the past a `runAt` may be (clock skew, a slow request) and still run at once. */
export const RUN_AT_TOLERANCE_MS = 5_000;

/**
 * Decides where a job goes, as a pure function of the request and the time. Delays up to the
 * hand-off threshold (the one the worker uses for retries) stay on JOBS with Redrive-Not-Before;
 * longer ones, and every repeat, go to the scheduler, so no long wait holds a consumer slot.
 */
export function decideTiming(req: TimingRequest, opts: { now: Date; handoffThresholdMs: number }): Timing {
  const { now } = opts;
  if (req.delay !== undefined && req.runAt !== undefined) {
    throw new TimingError('give either delay (milliseconds from now) or runAt (a time), not both');
  }
  let startAt: Date | undefined;
  if (req.runAt !== undefined) {
    const at = parseRfc3339(req.runAt);
    if (!at)
      throw new TimingError(
        `runAt "${req.runAt}" is not an RFC 3339 time with an offset, such as 2030-01-01T09:00:00Z`,
      );
    if (at.getTime() < now.getTime() - RUN_AT_TOLERANCE_MS) {
      throw new TimingError(
        `runAt ${req.runAt} is ${Math.round((now.getTime() - at.getTime()) / 1000)} s in the past; ` +
          `a time more than ${RUN_AT_TOLERANCE_MS / 1000} s ago is refused (leave runAt out to run now)`,
      );
    }
    startAt = at;
  } else if (req.delay !== undefined) {
    startAt = new Date(now.getTime() + req.delay);
  }

  if (req.repeat !== undefined) {
    let spec: RepeatSpec;
    try {
      spec = parseRepeatSpec(req.repeat);
    } catch (err) {
      if (err instanceof RepeatSpecError) throw new TimingError(err.message);
      throw err;
    }
    // A start time in the past (within the tolerance) means now.
    const start = startAt && startAt.getTime() < now.getTime() ? now : startAt;
    const first = firstFire(spec, now, start);
    if (!first) throw new TimingError(`repeat.cron "${spec.cron}" never fires`);
    if (spec.until && spec.until.getTime() < first.getTime()) {
      throw new TimingError(
        `repeat.until ${spec.until.toISOString()} is before the first fire at ${first.toISOString()}`,
      );
    }
    return { kind: 'repeat', spec, first, startAt: start };
  }

  if (!startAt || startAt.getTime() <= now.getTime()) return { kind: 'now' };
  const wait = startAt.getTime() - now.getTime();
  return wait <= opts.handoffThresholdMs ? { kind: 'notBefore', at: startAt } : { kind: 'later', at: startAt };
}

/** A job ready to publish, with its timing. */
export interface TimedJob {
  jobId: string;
  msgId: string;
  subject: string;
  payload: Uint8Array;
  maxAttempts?: number;
  /** The producer's idempotency key, when it gave one. */
  idempotencyKey?: string;
  timing: Timing;
  /** Set for jobs that go to the scheduler. */
  scheduleId?: string;
}

/**
 * Publishes a job where its timing says (JOBS, or a `schedule.delay` / `schedule.repeat` request
 * to the scheduler) and resolves with JetStream's PubAck.
 */
export function publishTimed(
  js: JetStreamClient,
  topology: Topology,
  job: TimedJob,
  opts: { ctx: Context; timeoutMs: number },
): Promise<PubAck> {
  const t = job.timing;
  const optional = {
    ...(job.maxAttempts !== undefined ? { maxAttempts: job.maxAttempts } : {}),
    ...(job.idempotencyKey ? { idempotencyKey: job.idempotencyKey } : {}),
  };
  if ((t.kind === 'later' || t.kind === 'repeat') && job.scheduleId) {
    return publishScheduleRequest(
      js,
      topology,
      {
        kind: t.kind === 'later' ? 'delay' : 'repeat',
        scheduleId: job.scheduleId,
        subject: job.subject,
        payload: job.payload,
        jobId: job.jobId,
        attempt: 0,
        ...optional,
        ...(t.kind === 'later' ? { dueAt: t.at } : { dueAt: t.first, repeat: repeatSpecToJson(t.spec) }),
      },
      opts,
    );
  }
  return publishJob(
    js,
    {
      subject: job.subject,
      payload: job.payload,
      jobId: job.jobId,
      msgId: job.msgId,
      attempt: 0,
      ...optional,
      ...(t.kind === 'notBefore' ? { notBefore: t.at } : {}),
    },
    opts,
  );
}

/** When the job (or a repeat's first fire) is due; undefined for one that runs now. */
export function dueOf(t: Timing): Date | undefined {
  switch (t.kind) {
    case 'now':
      return undefined;
    case 'notBefore':
    case 'later':
      return t.at;
    case 'repeat':
      return t.first;
  }
}
