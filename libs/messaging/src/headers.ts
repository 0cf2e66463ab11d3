import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { redactUrls } from './redact.js';

/** The header names of the wire contract (DESIGN.md). */
export const H = {
  msgId: 'Nats-Msg-Id',
  jobId: 'Redrive-Job-Id',
  attempt: 'Redrive-Attempt',
  maxAttempts: 'Redrive-Max-Attempts',
  notBefore: 'Redrive-Not-Before',
  /** Set when the producer gave an idempotency key: the job's success is recorded durably, once. */
  idempotencyKey: 'Redrive-Idempotency-Key',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  originalSubject: 'Redrive-Original-Subject',
  originalSeq: 'Redrive-Original-Seq',
  reason: 'Redrive-Reason',
  errorClass: 'Redrive-Error-Class',
  error: 'Redrive-Error',
  attempts: 'Redrive-Attempts',
  /** On schedule.* requests: when the scheduler should publish the job back. */
  dueAt: 'Redrive-Due-At',
  /** On schedule.* requests the schedule's id; on every job the scheduler fires, the schedule that fired it. */
  scheduleId: 'Redrive-Schedule-Id',
  /** On a fired job: which fire of its schedule it is (1 for the first). */
  scheduleFire: 'Redrive-Schedule-Fire',
  /** On schedule.repeat requests: the repeat specification as JSON ({"every": ms} or {"cron", "tz"}, …). */
  repeat: 'Redrive-Repeat',
  /**
   * On every fire of a repeating schedule, and on the job through its retries: the repeat it
   * belongs to, which the handler's `ctx.stopRepeat()` cancels.
   */
  repeatId: 'Redrive-Repeat-Id',
  /**
   * Which life of the job this is: absent until its first redrive, then a token unique to the
   * redrive that began it. Internal ids that name an attempt name the life too.
   */
  life: 'Redrive-Life',
  /**
   * On a dead letter without the job's body: the original was gone before it could be copied,
   * or too large to copy with the dead-letter headers under the server's max_payload.
   */
  payloadUnavailable: 'Redrive-Payload-Unavailable',
} as const;

/**
 * The bytes `h` takes on the wire (`NATS/1.0` line, one `name: value` line each, blank line), to
 * tell whether a message will fit under the server's max_payload.
 */
export function headerBytes(h: MsgHdrs): number {
  let n = 12;
  for (const k of h.keys()) for (const v of h.values(k)) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 4;
  return n;
}

export const DEAD_LETTER_REASONS = ['non_retryable', 'retries_exhausted', 'max_deliveries', 'terminated'] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** Job metadata carried in headers; everything but the ids is optional on the wire. */
export interface JobHeaders {
  /** The stable job id; defaults to the message id when a producer sent none. */
  jobId: string;
  msgId?: string;
  /** Attempts already made before this delivery (0 for a fresh job). */
  attempt: number;
  maxAttempts?: number;
  notBefore?: Date;
  /** The producer's idempotency key: at most one successful run is recorded for this job id. */
  idempotencyKey?: string;
  /** The job's life (`Redrive-Life`): absent before its first redrive. */
  life?: string;
  traceparent?: string;
  tracestate?: string;
}

/** Dead-letter metadata carried in headers on `dlq.<type>`. */
export interface DeadLetterHeaders {
  originalSubject: string;
  originalSeq: number;
  reason: DeadLetterReason;
  errorClass?: string;
  error?: string;
  attempts: number;
}

/** A malformed contract header: the job cannot be trusted to mean what it says. */
export class HeaderError extends Error {
  override readonly name = 'HeaderError';
  constructor(
    readonly header: string,
    readonly value: string,
    expected: string,
  ) {
    super(`header ${header} is "${value}", expected ${expected}`);
  }
}

/**
 * `Redrive-Attempt`: attempts already made before this delivery (0 when absent). The one parser
 * of the header; throws HeaderError for anything but a non-negative integer.
 */
export function readAttempt(h: MsgHdrs | undefined): number {
  return nonNegativeInt(h, H.attempt) ?? 0;
}

/**
 * The job id of a message: `Redrive-Job-Id`, else its message id, else `fallback`. Read on its own,
 * so a job with some other malformed header is still known by its own id (its dead letter and
 * its timeline use it).
 */
export function jobIdOf(h: MsgHdrs | undefined, fallback: string): string {
  return h?.get(H.jobId) || h?.get(H.msgId) || fallback;
}

function nonNegativeInt(h: MsgHdrs | undefined, name: string): number | undefined {
  const v = h?.get(name);
  if (!v) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new HeaderError(name, v, 'a non-negative integer');
  return Number(v);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 timestamp with an explicit offset; undefined for anything else. */
export function parseRfc3339(text: string): Date | undefined {
  const m = RFC3339.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Date would roll 30 February over into March; a date that does not exist is refused.
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  const date = new Date(text.trim());
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Reads the job headers of a delivered message. A message published with no Redrive headers
 * at all is a valid job: its id falls back to the message id, then to `fallbackId`.
 */
export function readJobHeaders(h: MsgHdrs | undefined, fallbackId: string): JobHeaders {
  const msgId = h?.get(H.msgId) || undefined;
  const notBeforeText = h?.get(H.notBefore);
  let notBefore: Date | undefined;
  if (notBeforeText) {
    notBefore = parseRfc3339(notBeforeText);
    if (!notBefore) throw new HeaderError(H.notBefore, notBeforeText, 'an RFC 3339 time with an offset');
  }
  const maxAttempts = nonNegativeInt(h, H.maxAttempts);
  return {
    jobId: jobIdOf(h, fallbackId),
    ...(msgId ? { msgId } : {}),
    attempt: readAttempt(h),
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    ...(notBefore ? { notBefore } : {}),
    ...(h?.get(H.idempotencyKey) ? { idempotencyKey: h.get(H.idempotencyKey) } : {}),
    ...(h?.get(H.life) ? { life: h.get(H.life) } : {}),
    ...(h?.get(H.traceparent) ? { traceparent: h.get(H.traceparent) } : {}),
    ...(h?.get(H.tracestate) ? { tracestate: h.get(H.tracestate) } : {}),
  };
}

/** Writes job headers (not the trace context, which the publisher injects). */
export function writeJobHeaders(
  job: Omit<JobHeaders, 'traceparent' | 'tracestate'>,
  h: MsgHdrs = natsHeaders(),
): MsgHdrs {
  h.set(H.jobId, job.jobId);
  if (job.msgId) h.set(H.msgId, job.msgId);
  h.set(H.attempt, String(job.attempt));
  if (job.maxAttempts !== undefined) h.set(H.maxAttempts, String(job.maxAttempts));
  if (job.notBefore) h.set(H.notBefore, job.notBefore.toISOString());
  if (job.idempotencyKey) h.set(H.idempotencyKey, job.idempotencyKey);
  if (job.life) h.set(H.life, job.life);
  return h;
}

/**
 * Writes dead-letter headers; the error text is cut to one line of at most 1,000 characters,
 * with every URL in it cut to its origin (a webhook's path is its secret: redactUrls).
 */
export function writeDeadLetterHeaders(dl: DeadLetterHeaders, h: MsgHdrs = natsHeaders()): MsgHdrs {
  h.set(H.originalSubject, dl.originalSubject);
  h.set(H.originalSeq, String(dl.originalSeq));
  h.set(H.reason, dl.reason);
  if (dl.errorClass) h.set(H.errorClass, dl.errorClass);
  // Cut by code points, not UTF-16 units, so an emoji is never split in half.
  if (dl.error)
    h.set(
      H.error,
      Array.from(redactUrls(dl.error).replace(/[\r\n]+/g, ' '))
        .slice(0, 1_000)
        .join(''),
    );
  h.set(H.attempts, String(dl.attempts));
  return h;
}

/** Reads dead-letter headers; throws HeaderError when a required one is missing or malformed. */
export function readDeadLetterHeaders(h: MsgHdrs | undefined): DeadLetterHeaders {
  const reason = h?.get(H.reason) ?? '';
  if (!(DEAD_LETTER_REASONS as readonly string[]).includes(reason)) {
    throw new HeaderError(H.reason, reason, `one of ${DEAD_LETTER_REASONS.join(', ')}`);
  }
  const originalSubject = h?.get(H.originalSubject);
  if (!originalSubject) throw new HeaderError(H.originalSubject, '', 'the subject the job was published on');
  return {
    originalSubject,
    originalSeq: nonNegativeInt(h, H.originalSeq) ?? 0,
    reason: reason as DeadLetterReason,
    ...(h?.get(H.errorClass) ? { errorClass: h.get(H.errorClass) } : {}),
    ...(h?.get(H.error) ? { error: h.get(H.error) } : {}),
    attempts: nonNegativeInt(h, H.attempts) ?? 0,
  };
}

/** All headers of a message as a plain object (last value wins), for handlers and logs. */
export function headersToObject(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const key of h.keys()) out[key] = h.get(key);
  return out;
}

export { natsHeaders as createHeaders, type MsgHdrs };
