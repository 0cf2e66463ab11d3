import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import {
  carryHeaders,
  H,
  headerBytes,
  msgIds,
  writeDeadLetterHeaders,
  type DeadLetterReason,
  type JobHeaders,
  type MsgHdrs,
  type Topology,
} from '@redrive/messaging';
import { sendInSpan, type Attributes, type Context } from '@redrive/telemetry';

/** nats-server's default max_payload, when the server did not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** The job cannot leave the consumer for the scheduler: with the hop's headers it exceeds max_payload. */
export class TooLargeToForwardError extends Error {
  override readonly name = 'TooLargeToForwardError';
  constructor(bytes: number, maxPayload: number) {
    super(
      `the job's ${bytes}-byte body and its hand-off headers exceed the server's max_payload of ${maxPayload} bytes`,
    );
  }
}

/**
 * Publishes what leaves the JOBS consumer: hand-offs to the retry-scheduler and dead letters.
 * Each carries only the headers its hop allows (libs/messaging wire.ts), resolves only after
 * JetStream stored the message, and uses a message id derived from the job, its life and its
 * attempt (or its place in JOBS), so a worker that crashes after publishing and before acking
 * does not produce a second copy when it runs the job again.
 */
export function createOutcomes(deps: { js: JetStreamClient; topology: Topology; maxPayload?: number | undefined }) {
  const { js, topology } = deps;
  const maxPayload = deps.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  // The message id travels as one more header (Nats-Msg-Id), added by the client.
  const fits = (data: Uint8Array, h: MsgHdrs, msgId: string) =>
    data.byteLength + headerBytes(h) + H.msgId.length + msgId.length + 4 <= maxPayload;
  // Each copy that leaves the consumer is published in a span under the delivery's process span,
  // and carries that span's context (not the original message's) to whoever reads it next.
  const publishTraced = (
    subject: string,
    data: Uint8Array,
    h: MsgHdrs,
    msgID: string,
    meta: JobHeaders,
    parent: Context,
    attributes: Attributes = {},
  ) =>
    sendInSpan(
      {
        name: 'publish',
        destination: subject,
        messageId: msgID,
        attributes: { 'redrive.job.id': meta.jobId, ...attributes },
      },
      parent,
      (k, v) => h.set(k, v),
      () => js.publish(subject, data, { headers: h, msgID, timeout: 5_000 }),
    );
  return {
    /** Sends the job to `schedule.retry`, due at `dueAt`, with the attempts made so far. */
    async handOff(m: JsMsg, meta: JobHeaders, attemptsMade: number, dueAt: Date, ctx: Context): Promise<void> {
      const h = carryHeaders('handOff', m.headers);
      h.set(H.jobId, meta.jobId);
      h.set(H.attempt, String(attemptsMade));
      h.set(H.dueAt, dueAt.toISOString());
      h.set(H.originalSubject, m.subject);
      const msgID = msgIds.handOff(meta.jobId, meta.life ?? '', attemptsMade, m.seq);
      if (!fits(m.data, h, msgID)) throw new TooLargeToForwardError(m.data.byteLength, maxPayload);
      await publishTraced(topology.scheduleSubject('retry'), m.data, h, msgID, meta, ctx);
    },

    /** Publishes the job with the dead-letter headers to `dlq.<type>`. */
    async deadLetter(
      m: JsMsg,
      meta: JobHeaders,
      dl: {
        reason: DeadLetterReason;
        errorClass: string;
        error: string;
        attempts: number;
        type: string;
        ctx: Context;
      },
    ): Promise<void> {
      const h = carryHeaders('deadLetter', m.headers);
      h.set(H.jobId, meta.jobId);
      writeDeadLetterHeaders(
        {
          originalSubject: m.subject,
          originalSeq: m.seq,
          reason: dl.reason,
          errorClass: dl.errorClass,
          error: dl.error,
          attempts: dl.attempts,
        },
        h,
      );
      const msgID = msgIds.deadLetter(topology.streams.jobs, m.seq);
      let data = m.data;
      if (!fits(data, h, msgID)) {
        // A job published straight to JetStream close to max_payload has no room for the
        // dead-letter headers. Its dead letter is recorded all the same, with everything but
        // the body (marked unavailable), rather than NAKed forever.
        h.set(
          H.error,
          `${h.get(H.error) ?? ''} [the job's ${data.byteLength}-byte body was too large to copy into the DLQ]`.slice(
            -1_000,
          ),
        );
        h.set(H.payloadUnavailable, 'true');
        data = new Uint8Array(0);
      }
      await publishTraced(topology.dlqSubject(dl.type), data, h, msgID, meta, dl.ctx, {
        'redrive.dead_letter.reason': dl.reason,
        'error.type': dl.errorClass,
      });
    },
  };
}

export type Outcomes = ReturnType<typeof createOutcomes>;
