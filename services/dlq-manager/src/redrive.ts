import { createHeaders, H, type MsgHdrs, type Topology } from '@redrive/messaging';
import { PAYLOAD_UNAVAILABLE_HEADER } from './recorder.js';

/** What a redrive needs from a stored dead letter. */
export interface RedriveSource {
  jobId: string;
  originalSubject: string;
  dlqStream: string;
  dlqSeq: number;
  redriveCount: number;
  headers: Readonly<Record<string, string>>;
  payload: Uint8Array | null;
}

export interface RedriveMessage {
  /** Where it is published: the job's own subject, or `schedule.redrive` for a delayed redrive. */
  subject: string;
  /** The subject the job runs on. */
  target: string;
  data: Uint8Array;
  headers: MsgHdrs;
  msgId: string;
  dueAt?: Date;
}

// Headers that described the job's death, or JetStream's bookkeeping: a redriven job starts
// without them. Redrive-Not-Before is dropped too: a redrive "now" means now.
const DROPPED = new Set(
  [
    H.msgId,
    H.originalSubject,
    H.originalSeq,
    H.reason,
    H.errorClass,
    H.error,
    H.attempts,
    H.dueAt,
    H.notBefore,
    PAYLOAD_UNAVAILABLE_HEADER,
  ].map((h) => h.toLowerCase()),
);

/**
 * Builds the message that gives a dead letter its next life (pure): the original headers
 * without the dead-letter ones, the same job id, attempts reset to 0, and a message id of its
 * own per redrive (`redrive:<DLQ stream>:<DLQ seq>:<n>`), so retrying one redrive request is
 * stored once while a second redrive is a new job run. A delayed redrive goes to the
 * retry-scheduler on `schedule.redrive` (a one-shot like `schedule.delay`, listed as a redrive),
 * which publishes it to the target when due.
 */
export function buildRedrive(
  source: RedriveSource,
  opts: { topology: Topology; payload?: Uint8Array; dueAt?: Date },
): RedriveMessage {
  const data = opts.payload ?? source.payload;
  if (!data) throw new TypeError('a dead letter without a payload needs one to be redriven');
  const h = createHeaders();
  for (const [k, v] of Object.entries(source.headers)) {
    const lower = k.toLowerCase();
    if (DROPPED.has(lower) || lower.startsWith('nats-')) continue;
    h.set(k, v);
  }
  h.set(H.jobId, source.jobId);
  h.set(H.attempt, '0');
  const msgId = `redrive:${source.dlqStream}:${source.dlqSeq}:${source.redriveCount + 1}`;
  if (opts.dueAt) {
    h.set(H.dueAt, opts.dueAt.toISOString());
    h.set(H.originalSubject, source.originalSubject);
    return {
      subject: opts.topology.scheduleSubject('redrive'),
      target: source.originalSubject,
      data,
      headers: h,
      msgId,
      dueAt: opts.dueAt,
    };
  }
  return { subject: source.originalSubject, target: source.originalSubject, data, headers: h, msgId };
}
