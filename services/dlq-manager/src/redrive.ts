import { carryHeaders, H, msgIds, type MsgHdrs, type Topology } from '@redrive/messaging';

/** What a redrive needs from a stored dead letter. */
export interface RedriveSource {
  /** The dead letter's id in Postgres: never reused, so it names the life a redrive begins. */
  id: number;
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
  /** The life the redriven job begins (`Redrive-Life`). */
  life: string;
  dueAt?: Date;
}

/**
 * Builds the message that gives a dead letter its next life (pure): the headers that travel on
 * a redrive (wire.ts: the job's identity and the producer's own, never the dead letter's or a
 * Not-Before: a redrive "now" means now), the same job id, attempts reset to 0, a new
 * `Redrive-Life` (`<dead letter id>.<n>`, so ids that name an attempt differ from the earlier
 * life's), and a message id of its own per redrive (`redrive:<DLQ stream>:<DLQ seq>:<n>`), so
 * retrying one redrive request is stored once while a second redrive is a new job run. A delayed redrive goes to the
 * retry-scheduler on `schedule.redrive` (a one-shot like `schedule.delay`, listed as a redrive),
 * which publishes it to the target when due.
 */
export function buildRedrive(
  source: RedriveSource,
  opts: { topology: Topology; payload?: Uint8Array; dueAt?: Date },
): RedriveMessage {
  const data = opts.payload ?? source.payload;
  if (!data) throw new TypeError('a dead letter without a payload needs one to be redriven');
  const n = source.redriveCount + 1;
  const h = carryHeaders('redrive', source.headers);
  h.set(H.jobId, source.jobId);
  h.set(H.attempt, '0');
  const life = `${source.id}.${n}`;
  h.set(H.life, life);
  const msgId = msgIds.redrive(source.dlqStream, source.dlqSeq, n);
  if (opts.dueAt) {
    h.set(H.dueAt, opts.dueAt.toISOString());
    h.set(H.originalSubject, source.originalSubject);
    return {
      subject: opts.topology.scheduleSubject('redrive'),
      target: source.originalSubject,
      data,
      headers: h,
      msgId,
      life,
      dueAt: opts.dueAt,
    };
  }
  return { subject: source.originalSubject, target: source.originalSubject, data, headers: h, msgId, life };
}
