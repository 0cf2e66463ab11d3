import {
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerInfo,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StoredMsg,
} from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import {
  carryHeaders,
  fallbackJobId,
  H,
  isJobType,
  jobIdOf,
  msgIds,
  readAttempt,
  writeDeadLetterHeaders,
  type MsgHdrs,
  type Topology,
} from '@redrive/messaging';
import { retryDelay } from '@redrive/retry-policy';
import { untilStored, type Pool } from '@redrive/store';
import { extractTraceContext, ROOT_CONTEXT, sendInSpan } from '@redrive/telemetry';
import { deadLetterExists } from './store.js';
import type { Faults } from '../faults.js';
import type { DlqMetrics } from '../metrics.js';
import { oneByOne } from '../pull-loop.js';
import { PAYLOAD_UNAVAILABLE_HEADER } from './recorder.js';
import { judgeClaim, parseAdvisory, type Advisory } from './claims.js';

/** How long an undecided claim waits before it is asked again: 1 s doubling to 30 s, by its deliveries. */
const UNDECIDED_RETRY = { baseMs: 1_000, maxMs: 30_000 } as const;

/** A consumer name an advisory may name: one subject token (a forged one could be anything). */
const CONSUMER_NAME = /^[^.*>\s]{1,255}$/;

/** What is known of the original job: the stored message, or only where it came from. */
export type Original =
  | { present: true; subject: string; data: Uint8Array; headers: MsgHdrs | undefined }
  | { present: false; subject: string };

/** The message dlq-manager publishes to the DLQ for an advisory (pure). */
export function advisoryDeadLetter(
  adv: Advisory,
  original: Original,
  topology: Topology,
): { subject: string; data: Uint8Array; headers: MsgHdrs; msgId: string } {
  const parsed = topology.parseJobSubject(original.subject);
  const type = parsed && isJobType(parsed.type) ? parsed.type : 'unknown';
  const h = carryHeaders('deadLetter', original.present ? original.headers : undefined);
  let prior = 0;
  if (original.present) {
    try {
      prior = readAttempt(original.headers);
    } catch {
      // A malformed attempt header: the deliveries the server counted are all that is known.
    }
  }
  const jobId = jobIdOf(original.present ? original.headers : undefined, fallbackJobId(adv.stream, adv.streamSeq));
  h.set(H.jobId, jobId);
  const error =
    adv.reason === 'max_deliveries'
      ? `the server gave up after ${adv.deliveries} deliveries (max_deliver of consumer ${adv.consumer}): ` +
        'the job crashed, hung or was never acknowledged by its worker'
      : `terminated by a client of consumer ${adv.consumer} after ${adv.deliveries} deliveries, without a dead letter`;
  writeDeadLetterHeaders(
    {
      originalSubject: original.subject,
      originalSeq: adv.streamSeq,
      reason: adv.reason,
      error: original.present ? error : `${error}; the original message was gone, its payload is unavailable`,
      attempts: prior + adv.deliveries,
    },
    h,
  );
  if (!original.present) h.set(PAYLOAD_UNAVAILABLE_HEADER, 'true');
  return {
    subject: topology.dlqSubject(type),
    data: original.present ? original.data : new Uint8Array(0),
    headers: h,
    // The same id the worker uses: a job dead-lettered by both paths is stored once in the DLQ.
    msgId: msgIds.deadLetter(adv.stream, adv.streamSeq),
  };
}

// "no message found": 10037 from a get, 10057 from a delete of a sequence that is gone.
const NO_MESSAGE_CODES = new Set<number>([JetStreamApiCodes.NoMessageFound, 10057]);

/** True when a JetStream API call failed because the message is not (or no longer) in the stream. */
export function isNoMessage(err: unknown): boolean {
  return err instanceof JetStreamApiError && NO_MESSAGE_CODES.has(err.code);
}

export interface AdvisoryHandlerDeps {
  pool: Pool;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  /** The durable consumer that records the DLQ stream. */
  recorderConsumer: string;
  /** The durable consumer that projects EVENTS into the audit trail. */
  auditConsumer: string;
  faults: Faults;
  metrics: DlqMetrics;
  logger: Logger;
  stopping: () => boolean;
  /** How long to wait for the recorder to catch up before deferring an advisory. */
  catchUpMs?: number;
}

/**
 * Turns advisories about JOBS into dead letters. JetStream's advisories are pointers (stream
 * and sequence), not copies: dlq-manager fetches the original, publishes it to `dlq.<type>`
 * (recorded by the recorder like the worker's), and then deletes it from JOBS, where interest
 * retention would otherwise keep a max-delivered message forever.
 */
export function createAdvisoryHandler(deps: AdvisoryHandlerDeps) {
  const { logger, topology, jsm } = deps;
  const catchUpMs = deps.catchUpMs ?? 5_000;

  const recorded = (adv: Advisory) =>
    untilStored(() => deadLetterExists(deps.pool, adv.stream, adv.streamSeq), {
      what: 'looking up a dead letter',
      stopping: deps.stopping,
      logger,
      onRetry: () => deps.metrics.storeRetries.inc({ loop: 'advisories' }),
    });

  /**
   * Whether `consumer` has settled every message its stream held when asked. The worker
   * publishes its dead letter before it terminates a job, and its success event before it acks
   * one, so once the recorder (or the audit projector) has caught up, the absence of a row
   * means there is none.
   */
  async function caughtUp(stream: string, consumer: string): Promise<boolean> {
    const last = (await jsm.streams.info(stream)).state.last_seq;
    const until = Date.now() + catchUpMs;
    for (;;) {
      const c = await jsm.consumers.info(stream, consumer);
      if (c.ack_floor.stream_seq >= last || (c.num_pending === 0 && c.num_ack_pending === 0)) return true;
      if (Date.now() > until || deps.stopping()) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const recorderCaughtUp = () => caughtUp(topology.streams.dlq, deps.recorderConsumer);

  /** Whether the job's current life (since its last redrive) has a recorded success. */
  const succeeded = (jobId: string) =>
    untilStored(
      async () =>
        (
          await deps.pool.query<{ done: boolean }>(
            `SELECT EXISTS (
               SELECT 1 FROM audit_events
                WHERE job_id = $1 AND kind = 'attempt.succeeded'
                  AND at >= COALESCE((SELECT max(at) FROM audit_events WHERE job_id = $1 AND kind = 'job.redriven'),
                                     '-infinity')
             ) AS done`,
            [jobId],
          )
        ).rows[0]!.done,
      {
        what: 'looking up a success',
        stopping: deps.stopping,
        logger,
        onRetry: () => deps.metrics.storeRetries.inc({ loop: 'advisories' }),
      },
    );

  /** The message an advisory points at, or null when it is not (or no longer) in the stream. */
  const storedOriginal = (adv: Advisory): Promise<StoredMsg | null> =>
    jsm.streams.getMessage(adv.stream, { seq: adv.streamSeq }).catch((err: unknown) => {
      if (isNoMessage(err)) return null;
      throw err;
    });

  /** The state of the consumer an advisory names; undefined when there is no such consumer. */
  async function consumerOf(adv: Advisory): Promise<ConsumerInfo | undefined> {
    if (!CONSUMER_NAME.test(adv.consumer)) return undefined;
    try {
      return await jsm.consumers.info(adv.stream, adv.consumer);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
      throw err;
    }
  }

  function originalOf(adv: Advisory, stored: StoredMsg | null, consumer: ConsumerInfo): Original {
    if (stored) return { present: true, subject: stored.subject, data: stored.data, headers: stored.header };
    // Gone already: the consumer's filter (or its name, worker-<priority>-<type>) says where it came from.
    let subject = consumer.config.filter_subject ?? '';
    if (!topology.parseJobSubject(subject)) {
      const m = /^worker-(high|normal|low)-(.+)$/.exec(adv.consumer);
      subject = m ? topology.jobSubject(m[1] as 'high' | 'normal' | 'low', m[2]!) : subject || 'unknown';
    }
    return { present: false, subject };
  }

  /** Removes a max-delivered original from JOBS; one that is already gone is fine. */
  async function removeOriginal(adv: Advisory): Promise<void> {
    if (adv.reason !== 'max_deliveries') return;
    try {
      await jsm.streams.deleteMessage(adv.stream, adv.streamSeq, false);
      logger.debug({ stream: adv.stream, seq: adv.streamSeq }, 'max-delivered original removed from JOBS');
    } catch (err) {
      if (!isNoMessage(err)) throw err;
    }
  }

  async function handleOne(m: JsMsg): Promise<void> {
    const adv = parseAdvisory(m.data);
    if (!adv || adv.stream !== topology.streams.jobs) {
      deps.metrics.advisories.inc({ kind: adv?.reason ?? 'unknown', outcome: 'ignored' });
      logger.warn({ subject: m.subject, seq: m.seq }, 'advisory not about JOBS; ignored');
      m.ack();
      return;
    }
    const log = logger.child({
      advisory: adv.reason,
      stream: adv.stream,
      originalSeq: adv.streamSeq,
      consumer: adv.consumer,
    });
    // A claim, not a fact, until the consumer it names bears it out: nothing is dead-lettered
    // or removed from JOBS on an advisory the consumer's state contradicts.
    const stored = await storedOriginal(adv);
    const consumer = await consumerOf(adv);
    const claim = judgeClaim(adv, consumer, stored?.subject);
    if (claim.verdict === 'refuted') {
      deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'refuted' });
      log.warn(
        { why: claim.why, deliveries: adv.deliveries },
        'advisory contradicted by the consumer it names (forged, or about another stream state): nothing dead-lettered or removed',
      );
      m.ack();
      return;
    }
    if (claim.verdict === 'undecided') {
      deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'unconfirmed' });
      log.info({ why: claim.why }, 'advisory not confirmed by its consumer yet; looked at again later');
      m.nak(retryDelay(UNDECIDED_RETRY, m.info.deliveryCount));
      return;
    }
    let already = await recorded(adv);
    if (!already) {
      if (!(await recorderCaughtUp())) {
        // The recorder is behind (Postgres slow or down): look again later rather than guess.
        deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'deferred' });
        log.info('recorder is behind; advisory deferred');
        m.nak(2_000);
        return;
      }
      already = await recorded(adv);
    }
    if (already) {
      await removeOriginal(adv);
      deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'already_dead_lettered' });
      log.debug('job already dead-lettered; advisory acknowledged');
      m.ack();
      return;
    }
    const original = originalOf(adv, stored, consumer!);
    const out = advisoryDeadLetter(adv, original, topology);
    const jobId = out.headers.get(H.jobId);
    if (adv.reason === 'max_deliveries' && original.present && jobId) {
      // A job whose acks were lost (a worker killed after its success, a NATS restart) is
      // delivered again until max_deliver, though it succeeded: it is finished, not dead.
      if (!(await caughtUp(topology.streams.events, deps.auditConsumer))) {
        deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'deferred' });
        log.info('audit projection is behind; advisory deferred');
        m.nak(2_000);
        return;
      }
      if (await succeeded(jobId)) {
        await removeOriginal(adv);
        m.ack();
        deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'already_succeeded' });
        log.warn({ jobId }, 'max-delivered job had already succeeded (its acks were lost); removed from JOBS');
        return;
      }
    }
    // The job's dead letter, under the trace context of the message the server gave up on.
    const ack = await sendInSpan(
      {
        name: 'publish',
        destination: out.subject,
        messageId: out.msgId,
        attributes: { 'redrive.job.id': out.headers.get(H.jobId), 'redrive.dead_letter.reason': adv.reason },
      },
      extractTraceContext((name) => out.headers.get(name) || undefined, ROOT_CONTEXT),
      (k, v) => out.headers.set(k, v),
      () => deps.js.publish(out.subject, out.data, { headers: out.headers, msgID: out.msgId, timeout: 5_000 }),
    );
    deps.faults.at('exit-after-dlq-publish');
    await removeOriginal(adv);
    m.ack();
    deps.metrics.advisories.inc({ kind: adv.reason, outcome: 'dead_lettered' });
    log.warn(
      {
        jobId: out.headers.get(H.jobId),
        dlqSeq: ack.seq,
        duplicate: ack.duplicate,
        payloadAvailable: original.present,
        consumer: adv.consumer,
        deliveries: adv.deliveries,
      },
      'job dead-lettered from an advisory',
    );
  }

  return {
    handle: oneByOne(handleOne, { logger, failed: 'advisory not handled; will try again', retryMs: 5_000 }),
  };
}
