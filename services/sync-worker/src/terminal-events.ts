import type { Logger } from '@redrive/lifecycle';
import { retryDelay } from '@redrive/retry-policy';
import type { EventInput, EventPublisher, JobHeaders } from '@redrive/messaging';
import type { Delivery } from './deliveries.js';

/** The success event of an idempotency-keyed job: one id, whichever run sends it. */
export const succeededEventId = (jobId: string) => `succeeded:${jobId}`;

/**
 * What a job's runs are counted under in Redis (crashes, completion markers): its id, and its
 * life after a redrive, so a redriven crash dead letter starts with a clean count.
 */
export const runKeyOf = (meta: JobHeaders) => (meta.life ? `${meta.jobId}#${meta.life}` : meta.jobId);

/** The job's life on its lifecycle events, so the audit trail orders a redriven job's lives. */
export const lifeField = (meta: JobHeaders) => (meta.life ? { life: meta.life } : {});

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5_000;

/**
 * Publishes a job's terminal event, trying again until JetStream stores it: a job is acked only
 * once its outcome is in the audit trail, and stays held meanwhile (the delivery tracker keeps
 * it alive). The event keeps its id across tries, so a PubAck lost after a store does not make
 * two events. False when the delivery was answered meanwhile (handed back at shutdown).
 */
export async function storeTerminalEvent(
  events: EventPublisher,
  d: Delivery,
  e: EventInput & { id: string },
  log: Logger,
): Promise<boolean> {
  for (let n = 1, delay = FIRST_RETRY_MS; ; delay = retryDelay({ baseMs: FIRST_RETRY_MS, maxMs: MAX_RETRY_MS }, ++n)) {
    try {
      await events.publish(e);
      return true;
    } catch (err) {
      if (d.settled) return false;
      log.warn({ err, kind: e.kind, retryInMs: delay }, 'event not stored; the job is kept until it is');
      await new Promise((r) => setTimeout(r, delay));
      if (d.settled) return false;
    }
  }
}

/**
 * Sends a keyed job's recorded success (its attempt and time) again under its fixed id, in case
 * the run that recorded it died before sending it; the audit trail keeps it once.
 */
export function resendSuccess(
  events: EventPublisher,
  d: Delivery,
  meta: JobHeaders,
  recorded: { attempt: number; at: string },
  traceId: string,
  log: Logger,
): Promise<boolean> {
  const event = {
    kind: 'attempt.succeeded',
    id: succeededEventId(meta.jobId),
    jobId: meta.jobId,
    type: d.type,
    attempt: recorded.attempt,
    traceId,
    at: new Date(recorded.at),
    ...lifeField(meta),
  } as const;
  return storeTerminalEvent(events, d, event, log);
}
