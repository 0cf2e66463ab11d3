import { within, type Deadline, type Logger } from '@redrive/lifecycle';
import { createHeaders, H, msgIds } from '@redrive/messaging';
import { planFire } from '@redrive/recurrence';
import { retryDelay } from '@redrive/retry-policy';
import type { Pool } from '@redrive/store';
import {
  extractTraceContext,
  failSpan,
  injectTraceContext,
  ROOT_CONTEXT,
  startMessagingSpan,
} from '@redrive/telemetry';
import type { SchedulerMetrics } from './metrics.js';
import type { Publisher, StoredAck } from './publisher.js';
import {
  advanceSchedules,
  claimDue,
  peekNextDue,
  pruneFinished,
  repeatOf,
  type Advance,
  type ScheduleRow,
} from './schedules.js';
import type { Alarm } from './wakeup.js';

export interface FiringDeps {
  pool: Pool;
  publisher: Publisher;
  namespace: string;
  batchSize: number;
  /** The longest sleep between looks at the table (the safety net; timers do the timing). */
  pollMaxMs: number;
  misfireThresholdMs: number;
  publishTimeoutMs: number;
  /** Finished schedules older than this are removed. */
  retentionMs: number;
  alarm: Alarm;
  logger: Logger;
  metrics: SchedulerMetrics;
  now?: () => number;
}

const PRUNE_EVERY_MS = 10 * 60_000;
const MAX_BACKOFF_MS = 5_000;

/** The headers of one fire: what the request carried, plus the job's id, attempt and schedule. */
export function fireHeaders(row: ScheduleRow, fireNumber: number) {
  const h = createHeaders();
  for (const [k, v] of row.headers) h.append(k, v);
  const repeating = row.kind === 'repeat' || row.kind === 'cron';
  // Each fire of a repeat is a job of its own; a one-shot keeps the job id it was scheduled with.
  h.set(H.jobId, repeating ? `${row.jobId}:${fireNumber}` : row.jobId);
  h.set(H.attempt, String(repeating ? 0 : row.attempt));
  h.set(H.scheduleId, row.id);
  h.set(H.scheduleFire, String(fireNumber));
  // The repeat a fire belongs to stays with the job through its retries, for ctx.stopRepeat().
  if (repeating) h.set(H.repeatId, row.id);
  // The same id for every try of this fire: JetStream stores it once.
  h.set(H.msgId, msgIds.fire(row.id, fireNumber));
  return h;
}

/**
 * A fire's message, published in a span of its own. A one-shot fire (a delay, a retry, a delayed
 * redrive) continues the trace of the job it fires, under the context its request carried (the
 * hand-off's publish, say); each fire of a repeat starts a trace of its own, linked to the
 * schedule's, so a schedule that fires for years does not grow one endless trace.
 */
export function tracedFire(row: ScheduleRow, fireNumber: number) {
  const headers = fireHeaders(row, fireNumber);
  const stored = extractTraceContext((name) => headers.get(name) || undefined, ROOT_CONTEXT);
  const repeating = row.kind === 'repeat' || row.kind === 'cron';
  const fire = startMessagingSpan(
    {
      name: 'publish',
      type: 'send',
      destination: row.subject,
      messageId: headers.get(H.msgId),
      attributes: {
        'redrive.job.id': headers.get(H.jobId),
        'redrive.schedule.id': row.id,
        'redrive.schedule.kind': row.kind,
        'redrive.schedule.fire': fireNumber,
      },
      links: repeating ? [stored] : [],
    },
    repeating ? ROOT_CONTEXT : stored,
  );
  injectTraceContext((k, v) => headers.set(k, v), fire.ctx);
  return { fire, msg: { subject: row.subject, data: row.payload, headers } };
}

/**
 * The firing loop: claims due rows (FOR UPDATE SKIP LOCKED), publishes each fire with the
 * message id `fire:<schedule id>:<fire number>` and waits for all PubAcks together, then advances or
 * finishes the rows in the same transaction. A crash between publish and commit leaves the rows
 * due, and their second publish inside JOBS's duplicate window is dropped as a duplicate, so a
 * fire is never published twice. Between rounds it sleeps until the next due row (or at most
 * `pollMaxMs`), woken early through the alarm.
 */
export function createFiringLoop(deps: FiringDeps) {
  const { logger, metrics, alarm } = deps;
  const now = deps.now ?? Date.now;
  let stopping = false;
  let loop: Promise<void> | undefined;
  let lastPrune = 0;
  let failing = 0;

  /**
   * One round: claims due rows, publishes them and waits for the PubAcks. It returns how many
   * rows it claimed and, still running, the advance and commit of its transaction (settling to
   * the error that ended the round, if any), so the next round can claim and publish meanwhile.
   */
  async function fireRound(): Promise<{ claimed: number; committed: Promise<Error | undefined> }> {
    // Its own BEGIN/COMMIT rather than libs/store's inTransaction: the commit outlives this
    // call (it runs while the next round claims and publishes), which inTransaction cannot do.
    const client = await deps.pool.connect();
    const abort = async (err: unknown) => {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      return err instanceof Error ? err : new Error(String(err));
    };
    try {
      await client.query('BEGIN');
      const at = now();
      const rows = await claimDue(client, deps.namespace, new Date(at), deps.batchSize);
      if (rows.length === 0) {
        await client.query('COMMIT');
        client.release();
        return { claimed: 0, committed: Promise.resolve(undefined) };
      }
      logger.debug({ claimed: rows.length }, 'claimed due schedules');
      const planned = rows.map((row) => ({
        row,
        plan: planFire(
          { due: row.nextDueAt!, fireCount: row.fireCount, repeat: repeatOf(row) },
          new Date(at),
          deps.misfireThresholdMs,
        ),
      }));
      const claimedAt = now();
      // All publishes of the round are in flight at once; their PubAcks come back pipelined.
      const sends = planned.filter(({ plan }) => plan.publish).map(({ row, plan }) => tracedFire(row, plan.fireNumber));
      const acks = deps.publisher.publishAll(
        sends.map((s) => s.msg),
        deps.publishTimeoutMs,
      );
      const acked = async (ack: Promise<StoredAck>) => {
        if ((await ack).duplicate) metrics.republished.inc();
        return now();
      };
      let sent = 0;
      const results = await Promise.allSettled(
        planned.map(({ plan }) => (plan.publish ? acked(acks[sent++]!) : Promise.resolve(undefined))),
      );
      const moves: Advance[] = [];
      let failed = 0;
      let ended = 0;
      for (const [i, { row, plan }] of planned.entries()) {
        const result = results[i]!;
        if (plan.publish) {
          const { span } = sends[ended++]!.fire;
          if (result.status === 'rejected') failSpan(span, result.reason);
          span.end();
        }
        metrics.due.inc({ kind: row.kind });
        if (result.status === 'rejected') {
          // Left as it is: still due, claimed again next round, published with the same id.
          failed++;
          metrics.publishFailures.inc();
          if (failed === 1)
            logger.warn({ err: result.reason, scheduleId: row.id }, 'fire not acknowledged by JetStream');
          continue;
        }
        if (plan.publish) {
          metrics.fired.inc({ kind: row.kind });
          metrics.lateness.observe({ kind: row.kind }, Math.max(0, result.value! - row.nextDueAt!.getTime()) / 1000);
        } else if (plan.skipped) {
          metrics.skipped.inc({ kind: row.kind });
        }
        moves.push({
          id: row.id,
          next: plan.next,
          fireCount: row.fireCount + (plan.publish ? 1 : 0),
          fired: plan.publish,
        });
      }
      const publishedAt = now();
      const committed = (async () => {
        await advanceSchedules(client, deps.namespace, moves);
        await client.query('COMMIT');
        client.release();
        logger.debug(
          { claimed: rows.length, failed, ms: now() - at, claimMs: claimedAt - at, publishMs: publishedAt - claimedAt },
          'fired due schedules',
        );
        return failed > 0 ? new Error(`${failed} fire(s) not acknowledged by JetStream`) : undefined;
      })().catch(abort);
      return { claimed: rows.length, committed };
    } catch (err) {
      throw await abort(err);
    }
  }

  async function prune(): Promise<void> {
    if (now() - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = now();
    const removed = await pruneFinished(deps.pool, deps.namespace, new Date(now() - deps.retentionMs));
    if (removed > 0) logger.info({ removed }, 'removed finished schedules past their retention');
  }

  async function run(): Promise<void> {
    // The last round's advance and commit. The next round claims and publishes meanwhile: the
    // rows of the last one stay locked until its commit, so SKIP LOCKED passes them by, and
    // Postgres's round trips overlap JetStream's instead of adding to them.
    let committing: Promise<Error | undefined> = Promise.resolve(undefined);
    /** Waits for the commit in flight; throws the error that ended its round. */
    const settle = async () => {
      const err = await committing;
      committing = Promise.resolve(undefined);
      if (err) throw err;
    };
    while (!stopping) {
      try {
        const round = await fireRound();
        const previous = committing;
        committing = round.committed;
        const err = await previous;
        if (err) throw err;
        failing = 0;
        // A full round means more may be due right now.
        if (round.claimed >= deps.batchSize) continue;
        await settle();
        const next = await peekNextDue(deps.pool, deps.namespace);
        const t = now();
        if (next && next.getTime() <= t) continue;
        await prune();
        await alarm.wait(Math.min(next?.getTime() ?? Infinity, t + deps.pollMaxMs));
      } catch (err) {
        failing++;
        metrics.loopErrors.inc();
        const pause = retryDelay({ baseMs: 250, maxMs: MAX_BACKOFF_MS }, failing + 1);
        if (!stopping) logger.error({ err, retryInMs: pause }, 'firing round failed');
        await alarm.wait(now() + pause);
      }
    }
    const err = await committing;
    if (err) logger.error({ err }, 'the last firing round failed; its rows stay due');
  }

  return {
    start(): void {
      loop = run();
    },

    /** True unless the last rounds failed (Postgres or NATS unreachable). */
    healthy(): boolean {
      return !stopping && failing < 3;
    },

    /** Stops claiming; the round in progress publishes, commits and ends. */
    async stop(deadline: Deadline): Promise<void> {
      stopping = true;
      alarm.stop();
      await within(loop ?? Promise.resolve(), deadline.remainingMs());
    },
  };
}
