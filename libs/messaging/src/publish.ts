import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { context as otelContext, type Context } from '@opentelemetry/api';
import { injectTraceContext } from '@redrive/telemetry';
import { writeJobHeaders, type JobHeaders } from './headers.js';

/** A job to put on `jobs.<priority>.<type>`: the payload bytes go on the wire untouched. */
export interface OutgoingJob extends Omit<JobHeaders, 'traceparent' | 'tracestate'> {
  subject: string;
  payload: Uint8Array;
}

/** JetStream did not acknowledge a publish: the job is not accepted and the caller may retry. */
export class PublishFailedError extends Error {
  override readonly name = 'PublishFailedError';
  constructor(
    readonly subject: string,
    cause: unknown,
  ) {
    super(
      `JetStream did not accept the publish to ${subject}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
  }
}

/**
 * Publishes a job with the contract headers and the W3C trace context of `ctx`, and resolves
 * only once JetStream has stored it (PubAck). A message id makes a repeated publish inside the
 * stream's duplicate window a no-op that reports `duplicate: true`.
 */
export async function publishJob(
  js: JetStreamClient,
  job: OutgoingJob,
  opts: { ctx?: Context; timeoutMs?: number } = {},
): Promise<PubAck> {
  const h = writeJobHeaders(job);
  injectTraceContext((k, v) => h.set(k, v), opts.ctx ?? otelContext.active());
  try {
    return await js.publish(job.subject, job.payload, {
      headers: h,
      ...(job.msgId ? { msgID: job.msgId } : {}),
      timeout: opts.timeoutMs ?? 5_000,
    });
  } catch (err) {
    throw new PublishFailedError(job.subject, err);
  }
}
