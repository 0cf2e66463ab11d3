import type { JetStreamClient } from '@nats-io/jetstream';
import { HttpError } from '@redrive/http';
import {
  createUuidV7,
  keyedJobId,
  msgIds,
  PublishFailedError,
  type EventPublisher,
  type Priority,
  type Topology,
} from '@redrive/messaging';
import { failSpan, startMessagingSpan, traceIdOf, type Context } from '@redrive/telemetry';
import type { ConsumerDirectory } from './consumer-directory.js';
import { decideTiming, dueOf, publishTimed, TimingError, type Timing } from './timing.js';

/** A job as a producer submits it (already schema-validated). */
export interface JobRequest {
  type: string;
  payload: unknown;
  priority?: Priority;
  idempotencyKey?: string;
  maxAttempts?: number;
  /** Run this many milliseconds from now. */
  delay?: number;
  /** Run at this RFC 3339 time. */
  runAt?: string;
  /** Run repeatedly: {every | cron, tz, limit, until, missed}. */
  repeat?: Record<string, unknown>;
}

export interface Accepted {
  jobId: string;
  stream: string;
  seq: number;
  duplicate: boolean;
  traceId: string;
  /** For a job handed to the scheduler (a long delay, a repeat): the schedule to list or cancel. */
  scheduleId?: string;
  /** When a delayed job (or a repeat's first fire) is due. */
  runAt?: string;
}

/** A job encoded for the wire and checked, but not yet published. */
export interface PreparedJob {
  jobId: string;
  msgId: string;
  subject: string;
  type: string;
  priority: Priority;
  payload: Uint8Array;
  maxAttempts?: number;
  idempotencyKey?: string;
  timing: Timing;
  scheduleId?: string;
}

export interface SubmitterDeps {
  js: JetStreamClient;
  /** Records `job.accepted` in the audit trail; a failure is logged, not answered. */
  events?: EventPublisher;
  onEventError?: (err: unknown, jobId: string) => void;
  topology: Topology;
  directory: ConsumerDirectory;
  maxPayloadBytes: number;
  publishTimeoutMs: number;
  /** Delays longer than this go to the retry-scheduler; shorter ones wait on JOBS. */
  handoffThresholdMs: number;
  onAccepted?: (job: PreparedJob, accepted: Accepted) => void;
}

/**
 * Turns validated requests into published jobs. `prepare` does every check that can refuse a
 * job before anything is published, so a batch is refused whole or published whole.
 */
export function createSubmitter(deps: SubmitterDeps) {
  const encoder = new TextEncoder();
  const uuidv7 = createUuidV7();

  async function prepare(req: JobRequest, where = 'payload'): Promise<PreparedJob> {
    let timing: Timing;
    try {
      timing = decideTiming(req, { now: new Date(), handoffThresholdMs: deps.handoffThresholdMs });
    } catch (err) {
      if (err instanceof TimingError) throw new HttpError(400, 'VALIDATION_ERROR', err.message);
      throw err;
    }
    const payload = encoder.encode(JSON.stringify(req.payload));
    if (payload.byteLength > deps.maxPayloadBytes) {
      throw new HttpError(
        413,
        'PAYLOAD_TOO_LARGE',
        `${where} is ${payload.byteLength} bytes encoded, over the limit of ${deps.maxPayloadBytes} bytes`,
      );
    }
    const priority = req.priority ?? 'normal';
    const subject = deps.topology.jobSubject(priority, req.type);
    let served: boolean;
    try {
      served = await deps.directory.serves(subject);
    } catch (err) {
      // NATS unreachable while the list of served types needs reading: the same answer as a
      // publish that JetStream did not acknowledge, so producers retry.
      throw new HttpError(
        503,
        'NOT_ACCEPTED',
        `the job was not accepted, retry later: JetStream is not reachable (${(err as Error).message})`,
        { 'retry-after': '1' },
      );
    }
    if (!served) {
      throw new HttpError(
        422,
        'NO_WORKER',
        `no worker consumes job type "${req.type}" at ${priority} priority, so the job would be dropped; ` +
          'start a sync-worker with a handler for this type first',
      );
    }
    // With an idempotency key the job id is `<type>:<key>`, so a duplicate submission answers
    // with the same id as the first one, and one key given for two types names two jobs. Its
    // message id lives in the producer-key namespace, which no internal id shares (wire.ts).
    const key = req.idempotencyKey;
    const jobId = key !== undefined ? keyedJobId(req.type, key) : uuidv7();
    return {
      jobId,
      msgId: key !== undefined ? msgIds.producerKey(req.type, key) : jobId,
      subject,
      type: req.type,
      priority,
      payload,
      ...(req.maxAttempts !== undefined ? { maxAttempts: req.maxAttempts } : {}),
      ...(req.idempotencyKey !== undefined ? { idempotencyKey: req.idempotencyKey } : {}),
      timing,
      // Like the job id, an idempotency key names the schedule, so a retried submission finds it.
      ...(timing.kind === 'later' || timing.kind === 'repeat'
        ? { scheduleId: key !== undefined ? jobId : uuidv7() }
        : {}),
    };
  }

  async function publish(job: PreparedJob, parent: Context): Promise<Accepted> {
    const { span, ctx } = startMessagingSpan(
      {
        name: 'publish',
        type: 'send',
        destination: job.subject,
        messageId: job.msgId,
        attributes: { 'redrive.job.id': job.jobId, 'redrive.job.type': job.type },
      },
      parent,
    );
    try {
      const ack = await publishTimed(deps.js, deps.topology, job, { ctx, timeoutMs: deps.publishTimeoutMs });
      const due = dueOf(job.timing);
      const accepted: Accepted = {
        jobId: job.jobId,
        stream: ack.stream,
        seq: ack.seq,
        duplicate: ack.duplicate,
        traceId: traceIdOf(ctx) ?? '',
        ...(job.scheduleId ? { scheduleId: job.scheduleId } : {}),
        ...(due ? { runAt: due.toISOString() } : {}),
      };
      if (!ack.duplicate && deps.events) {
        // The job is stored: a lost audit event must not turn the 202 into an error.
        await deps.events
          .publish({
            kind: 'job.accepted',
            jobId: job.jobId,
            type: job.type,
            attempt: 0,
            traceId: accepted.traceId,
            data: {
              priority: job.priority,
              seq: ack.seq,
              ...(accepted.scheduleId ? { scheduleId: accepted.scheduleId } : {}),
              ...(accepted.runAt ? { runAt: accepted.runAt } : {}),
            },
          })
          .catch((err: unknown) => deps.onEventError?.(err, job.jobId));
      }
      deps.onAccepted?.(job, accepted);
      return accepted;
    } catch (err) {
      failSpan(span, err);
      if (err instanceof PublishFailedError) {
        throw new HttpError(503, 'NOT_ACCEPTED', `the job was not accepted, retry later: ${err.message}`, {
          'retry-after': '1',
        });
      }
      throw err;
    } finally {
      span.end();
    }
  }

  return { prepare, publish };
}

export type Submitter = ReturnType<typeof createSubmitter>;
