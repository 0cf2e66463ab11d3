import type { JetStreamClient } from '@nats-io/jetstream';
import { HttpError } from '@redrive/http';
import { PublishFailedError, publishJob, type EventPublisher, type Priority, type Topology } from '@redrive/messaging';
import { SpanKind, SpanStatusCode, traceIdOf, tracer, trace, type Context } from '@redrive/telemetry';
import { v7 as uuidv7 } from 'uuid';
import type { ConsumerDirectory } from './consumer-directory.js';

/** A job as a producer submits it (already schema-validated). */
export interface JobRequest {
  type: string;
  payload: unknown;
  priority?: Priority;
  idempotencyKey?: string;
  maxAttempts?: number;
}

export interface Accepted {
  jobId: string;
  stream: string;
  seq: number;
  duplicate: boolean;
  traceId: string;
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
  onAccepted?: (job: PreparedJob, accepted: Accepted) => void;
}

/**
 * Turns validated requests into published jobs. `prepare` does every check that can refuse a
 * job before anything is published, so a batch is refused whole or published whole.
 */
export function createSubmitter(deps: SubmitterDeps) {
  const encoder = new TextEncoder();

  async function prepare(req: JobRequest, where = 'payload'): Promise<PreparedJob> {
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
    if (!(await deps.directory.serves(subject))) {
      throw new HttpError(
        422,
        'NO_WORKER',
        `no worker consumes job type "${req.type}" at ${priority} priority, so the job would be dropped; ` +
          'start a sync-worker with a handler for this type first',
      );
    }
    // With an idempotency key the job id is the key itself, so a duplicate submission answers
    // with the same id as the first one.
    const jobId = req.idempotencyKey ?? uuidv7();
    return {
      jobId,
      msgId: jobId,
      subject,
      type: req.type,
      priority,
      payload,
      ...(req.maxAttempts !== undefined ? { maxAttempts: req.maxAttempts } : {}),
    };
  }

  async function publish(job: PreparedJob, parent: Context): Promise<Accepted> {
    const span = tracer().startSpan(
      `publish ${job.subject}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'nats',
          'messaging.destination.name': job.subject,
          'redrive.job.id': job.jobId,
          'redrive.job.type': job.type,
        },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    try {
      const ack = await publishJob(
        deps.js,
        {
          subject: job.subject,
          payload: job.payload,
          jobId: job.jobId,
          msgId: job.msgId,
          attempt: 0,
          ...(job.maxAttempts !== undefined ? { maxAttempts: job.maxAttempts } : {}),
        },
        { ctx, timeoutMs: deps.publishTimeoutMs },
      );
      const accepted: Accepted = {
        jobId: job.jobId,
        stream: ack.stream,
        seq: ack.seq,
        duplicate: ack.duplicate,
        traceId: traceIdOf(ctx) ?? traceIdOf(parent) ?? '',
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
            data: { priority: job.priority, seq: ack.seq },
          })
          .catch((err: unknown) => deps.onEventError?.(err, job.jobId));
      }
      deps.onAccepted?.(job, accepted);
      return accepted;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
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
