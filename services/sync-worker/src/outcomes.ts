import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import {
  carryHeaders,
  H,
  msgIds,
  writeDeadLetterHeaders,
  type DeadLetterReason,
  type JobHeaders,
  type Topology,
} from '@redrive/messaging';

/**
 * Publishes what leaves the JOBS consumer: hand-offs to the retry-scheduler and dead letters.
 * Each carries only the headers its hop allows (libs/messaging wire.ts), resolves only after
 * JetStream stored the message, and uses a message id derived from the job, its life and its
 * attempt (or its place in JOBS), so a worker that crashes after publishing and before acking
 * does not produce a second copy when it runs the job again.
 */
export function createOutcomes(deps: { js: JetStreamClient; topology: Topology }) {
  const { js, topology } = deps;
  return {
    /** Sends the job to `schedule.retry`, due at `dueAt`, with the attempts made so far. */
    async handOff(m: JsMsg, meta: JobHeaders, attemptsMade: number, dueAt: Date): Promise<void> {
      const h = carryHeaders('handOff', m.headers);
      h.set(H.jobId, meta.jobId);
      h.set(H.attempt, String(attemptsMade));
      h.set(H.dueAt, dueAt.toISOString());
      h.set(H.originalSubject, m.subject);
      await js.publish(topology.scheduleSubject('retry'), m.data, {
        headers: h,
        msgID: msgIds.handOff(meta.jobId, meta.life ?? '', attemptsMade),
        timeout: 5_000,
      });
    },

    /** Publishes the job with the dead-letter headers to `dlq.<type>`. */
    async deadLetter(
      m: JsMsg,
      meta: JobHeaders,
      dl: { reason: DeadLetterReason; errorClass: string; error: string; attempts: number; type: string },
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
      await js.publish(topology.dlqSubject(dl.type), m.data, {
        headers: h,
        msgID: msgIds.deadLetter(topology.streams.jobs, m.seq),
        timeout: 5_000,
      });
    },
  };
}
