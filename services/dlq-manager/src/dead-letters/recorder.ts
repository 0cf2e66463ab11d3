import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import {
  deadLetteredEventId,
  fallbackJobId,
  DLQ_MANAGER_CONSUMERS,
  H,
  HeaderError,
  headersToObject,
  parseDeadLetterMsgId,
  readDeadLetterHeaders,
  type MsgHdrs,
  type Topology,
} from '@redrive/messaging';
import { inTransaction, untilStored, type Pool } from '@redrive/store';
import { inSpan, startProcessSpan } from '@redrive/telemetry';
import { appendAudit } from '../audit/store.js';
import { insertDeadLetter, type NewDeadLetter } from './store.js';
import type { Faults } from '../faults.js';
import type { DlqMetrics } from '../metrics.js';
import { oneByOne } from '../pull-loop.js';

/** Set on a dead letter whose original was gone before it could be copied: the body is empty. */
export const PAYLOAD_UNAVAILABLE_HEADER = H.payloadUnavailable;

/** The trace id in a W3C traceparent header, if it has one. */
export function traceIdFromTraceparent(value: string | undefined): string | null {
  const m = value ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(value.trim()) : null;
  return m && m[1] !== '0'.repeat(32) ? m[1]! : null;
}

/** The part of a DLQ message the recorder reads. */
export interface DlqMessage {
  subject: string;
  seq: number;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  time: Date;
}

/**
 * Reads a message of the DLQ stream as a dead letter; throws HeaderError when it does not
 * carry the dead-letter headers. The original stream comes from the message id both paths
 * use (`dlq:<stream>:<seq>`), so the entry's key matches whoever published it.
 */
export function deadLetterFromMessage(m: DlqMessage, topology: Topology, dlqStream: string): NewDeadLetter {
  const dl = readDeadLetterHeaders(m.headers);
  const root = topology.dlqSubject('');
  const type = m.subject.startsWith(root) ? m.subject.slice(root.length) : m.subject;
  const msgId = parseDeadLetterMsgId(m.headers?.get(H.msgId));
  const originalStream = msgId && msgId.seq === dl.originalSeq ? msgId.stream : topology.streams.jobs;
  const unavailable = m.headers?.get(PAYLOAD_UNAVAILABLE_HEADER) === 'true';
  return {
    jobId: m.headers?.get(H.jobId) || fallbackJobId(originalStream, dl.originalSeq),
    type,
    originalStream,
    originalSubject: dl.originalSubject,
    originalSeq: dl.originalSeq,
    dlqStream,
    dlqSeq: m.seq,
    reason: dl.reason,
    errorClass: dl.errorClass ?? null,
    error: dl.error ?? null,
    attempts: dl.attempts,
    payload: unavailable ? null : m.data,
    headers: headersToObject(m.headers),
    traceId: traceIdFromTraceparent(m.headers?.get(H.traceparent)),
    createdAt: m.time,
  };
}

export interface RecorderDeps {
  pool: Pool;
  topology: Topology;
  faults: Faults;
  metrics: DlqMetrics;
  logger: Logger;
  stopping: () => boolean;
}

/**
 * Records every message of the DLQ stream as a dead letter in Postgres and acks it only once
 * the row is committed. The row's key is the original message, so a replayed DLQ message, or
 * the same job dead-lettered by the worker and by the advisory path, is stored once.
 */
export function createRecorder(deps: RecorderDeps) {
  const { logger, topology } = deps;
  const dlqStream = topology.streams.dlq;

  async function record(m: JsMsg): Promise<void> {
    let dl: NewDeadLetter;
    try {
      dl = deadLetterFromMessage(
        {
          subject: m.subject,
          seq: m.seq,
          data: m.data,
          headers: m.headers,
          time: new Date(m.info.timestampNanos / 1e6),
        },
        topology,
        dlqStream,
      );
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err;
      // Not a dead letter (published by hand without the contract headers): nothing to record.
      logger.error({ err, seq: m.seq, subject: m.subject }, 'DLQ message without dead-letter headers; skipped');
      m.term();
      return;
    }
    // One span per dead letter, under the context its DLQ message carried (the worker's publish).
    const recording = startProcessSpan((name) => m.headers?.get(name) || undefined, {
      destination: m.subject,
      messageId: m.headers?.get(H.msgId) || undefined,
      consumer: DLQ_MANAGER_CONSUMERS.recorder,
      attributes: { 'redrive.job.id': dl.jobId, 'redrive.dead_letter.reason': dl.reason },
    });
    const inserted = await inSpan(recording, () =>
      untilStored(
        () =>
          inTransaction(deps.pool, async (client) => {
            const id = await insertDeadLetter(client, dl);
            // The job's terminal event, in the same transaction as the entry. The worker emits it
            // too (with the same id) for the jobs it dead-letters itself, but its publish can fail
            // after the dead letter is stored; for the jobs the server gave up on, this is the only one.
            if (id !== undefined) {
              await appendAudit(client, [
                {
                  id: deadLetteredEventId(dl.originalStream, dl.originalSeq, dl.jobId),
                  jobId: dl.jobId,
                  type: dl.type,
                  kind: 'job.dead_lettered',
                  attempt: dl.attempts,
                  errorClass: dl.errorClass,
                  error: dl.error,
                  delayMs: null,
                  durationMs: null,
                  traceId: dl.traceId,
                  actor: null,
                  at: dl.createdAt,
                  extra: {
                    reason: dl.reason,
                    deadLetterId: id,
                    payloadAvailable: dl.payload !== null,
                    ...(dl.headers[H.life] ? { life: dl.headers[H.life] } : {}),
                  },
                },
              ]);
            }
            deps.faults.at('exit-before-record-commit');
            return id;
          }),
        {
          what: 'recording a dead letter',
          stopping: deps.stopping,
          logger,
          onRetry: () => deps.metrics.storeRetries.inc({ loop: 'recorder' }),
        },
      ).then((id) => {
        if (id !== undefined) recording.span.setAttribute('redrive.dead_letter.id', id);
        return id;
      }),
    );
    m.ack();
    if (inserted !== undefined) {
      deps.metrics.recorded.inc({ reason: dl.reason });
      logger.info(
        { deadLetterId: inserted, jobId: dl.jobId, type: dl.type, reason: dl.reason, originalSeq: dl.originalSeq },
        'dead letter recorded',
      );
    } else {
      logger.debug({ jobId: dl.jobId, originalSeq: dl.originalSeq }, 'dead letter already recorded');
    }
  }

  return {
    /** Handles one pulled batch, in order; a write Postgres refused for good comes back much later. */
    handle: oneByOne(record, { logger, failed: 'dead letter not recorded; will try again', retryMs: 30_000 }),
  };
}
