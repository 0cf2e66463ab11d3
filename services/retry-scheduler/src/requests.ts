import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { within, type Deadline, type Logger } from '@redrive/lifecycle';
import {
  carriedEntries,
  H,
  HeaderError,
  jobIdOf,
  msgIds,
  parseRfc3339,
  readAttempt,
  STOP_REPEAT_REASON,
  type EventPublisher,
  type MsgHdrs,
  type Topology,
} from '@redrive/messaging';
import { firstFire, parseRepeatSpec, RepeatSpecError } from '@redrive/recurrence';
import { inTransaction, type Pool } from '@redrive/store';
import { v7 as uuidv7 } from 'uuid';
import type { SchedulerMetrics } from './metrics.js';
import { publishCancelled } from './cancelled.js';
import {
  cancelledAmong,
  cancelSchedules,
  insertSchedules,
  NOTIFY_CHANNEL,
  type CancelledSchedule,
  type NewSchedule,
} from './schedules.js';

/** What one request on `schedule.<kind>` asks for. */
export type ParsedRequest =
  | { op: 'create'; schedule: NewSchedule }
  | { op: 'cancel'; id: string; reason: string }
  | { op: 'invalid'; problem: string };

/**
 * Reads a request into what it asks for, as a pure function of the message and the time. A
 * request that cannot be honoured (no JOBS subject to publish to, no due time, a bad repeat
 * specification) is `invalid` with the reason; the consumer terminates it.
 */
export function parseRequest(
  msg: { subject: string; headers?: MsgHdrs | undefined; data: Uint8Array; seq: number },
  deps: { topology: Topology; now: Date; newId?: () => string },
): ParsedRequest {
  const { topology } = deps;
  const root = topology.scheduleSubject('');
  const kind = msg.subject.startsWith(root) ? msg.subject.slice(root.length) : msg.subject;
  const h = msg.headers;
  const get = (name: string) => h?.get(name) || undefined;
  const scheduleId = get(H.scheduleId);

  if (kind === 'cancel') {
    if (!scheduleId) return { op: 'invalid', problem: `a cancel request needs ${H.scheduleId}` };
    return { op: 'cancel', id: scheduleId, reason: get(H.reason) ?? 'cancelled' };
  }
  const oneShot = kind === 'delay' || kind === 'retry' || kind === 'redrive';
  if (!oneShot && kind !== 'repeat' && kind !== 'cron') {
    return { op: 'invalid', problem: `unknown request kind "${kind}" (delay, retry, redrive, repeat or cancel)` };
  }
  const subject = get(H.originalSubject);
  if (!subject || !topology.parseJobSubject(subject)) {
    return {
      op: 'invalid',
      problem: `${H.originalSubject} must be the jobs.<priority>.<type> subject to publish to, got "${subject ?? ''}"`,
    };
  }
  let dueAt: Date | undefined;
  const dueText = get(H.dueAt);
  if (dueText) {
    dueAt = parseRfc3339(dueText);
    if (!dueAt) return { op: 'invalid', problem: `${H.dueAt} "${dueText}" is not an RFC 3339 time with an offset` };
  }
  let attempt: number;
  try {
    attempt = readAttempt(h);
  } catch (err) {
    if (err instanceof HeaderError) return { op: 'invalid', problem: err.message };
    throw err;
  }
  const msgId = get(H.msgId);
  const fallbackId = `${topology.streams.schedule}:${msg.seq}`;
  const base = {
    id: scheduleId ?? (deps.newId ?? uuidv7)(),
    // A redelivered request carries the same message id, so it maps to the row already stored.
    requestId: msgId ?? (scheduleId ? msgIds.scheduleRequest(scheduleId) : fallbackId),
    subject,
    jobId: jobIdOf(h, fallbackId),
    attempt,
    payload: msg.data,
    // Only what travels with a job (wire.ts): ids, attempts and times of this request are the
    // scheduler's to set on each fire.
    headers: carriedEntries('schedule', h),
  };

  if (oneShot) {
    if (!dueAt) return { op: 'invalid', problem: `a ${kind} request needs ${H.dueAt}` };
    return { op: 'create', schedule: { ...base, kind, dueAt } };
  }
  const repeatText = get(H.repeat);
  if (!repeatText) return { op: 'invalid', problem: `a repeat request needs ${H.repeat}` };
  let spec;
  try {
    spec = parseRepeatSpec(JSON.parse(repeatText) as unknown, H.repeat);
  } catch (err) {
    const why = err instanceof RepeatSpecError ? err.message : `${H.repeat} is not JSON: ${(err as Error).message}`;
    return { op: 'invalid', problem: why };
  }
  const first = firstFire(spec, deps.now, dueAt);
  if (!first) return { op: 'invalid', problem: `${H.repeat} never fires` };
  if (spec.until && first.getTime() > spec.until.getTime()) {
    return { op: 'invalid', problem: `${H.repeat} ends (until) before its first fire at ${first.toISOString()}` };
  }
  return {
    op: 'create',
    schedule: { ...base, kind: spec.cron !== undefined ? 'cron' : 'repeat', attempt: 0, repeat: spec, dueAt: first },
  };
}

export interface RequestConsumerDeps {
  js: JetStreamClient;
  topology: Topology;
  pool: Pool;
  /** Where a cancelled schedule's `job.cancelled` event goes. */
  events: EventPublisher;
  namespace: string;
  consumerName: string;
  /** Messages held from the consumer at once, and stored per transaction at most. */
  maxBatch: number;
  /** Called after a commit with the earliest due time it stored, so the firing loop wakes early. */
  onStored: (earliestDue: Date) => void;
  logger: Logger;
  metrics: SchedulerMetrics;
  now?: () => Date;
}

// After a failed commit, requests go back to the stream after this long and are stored again.
const RETRY_DELAY_MS = 2_000;

/**
 * Turns requests on the SCHEDULE stream into rows. Messages are gathered while a transaction is
 * in flight and stored together, then acked only after the commit: a crash before the ack
 * redelivers the request, which the unique request id makes a no-op.
 */
export function createRequestConsumer(deps: RequestConsumerDeps) {
  const { logger, metrics, topology } = deps;
  const now = deps.now ?? (() => new Date());
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let stopping = false;
  let running = false;
  let buffer: JsMsg[] = [];
  let chain: Promise<void> = Promise.resolve();
  let queued = false;

  async function store(batch: JsMsg[]): Promise<void> {
    const creates: NewSchedule[] = [];
    const cancels: { id: string; reason: string }[] = [];
    const invalid: { m: JsMsg; problem: string }[] = [];
    const settled: JsMsg[] = [];
    const cancelMsgs: JsMsg[] = [];
    let endedJobs: CancelledSchedule[] = [];
    const at = now();
    for (const m of batch) {
      const parsed = parseRequest(m, { topology, now: at });
      if (parsed.op === 'invalid') invalid.push({ m, problem: parsed.problem });
      else {
        settled.push(m);
        if (parsed.op === 'create') creates.push(parsed.schedule);
        else {
          cancels.push({ id: parsed.id, reason: parsed.reason });
          cancelMsgs.push(m);
        }
      }
    }
    if (creates.length + cancels.length > 0) {
      try {
        const stored = await inTransaction(deps.pool, async (client) => {
          const created = await insertSchedules(client, deps.namespace, creates);
          const cancelled = await cancelSchedules(client, deps.namespace, cancels);
          const ended = await cancelledAmong(
            client,
            deps.namespace,
            cancels.map((c) => c.id),
          );
          const earliest = created.reduce<Date | undefined>(
            (min, c) => (!min || c.dueAt < min ? c.dueAt : min),
            undefined,
          );
          // Delivered at commit to every replica's LISTEN connection, so each re-arms its timer.
          if (earliest)
            await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, `${deps.namespace} ${earliest.getTime()}`]);
          return { created, cancelled, ended, earliest };
        });
        const { created, cancelled, earliest } = stored;
        endedJobs = stored.ended;
        if (earliest) deps.onStored(earliest);
        for (const c of creates) {
          const fresh = created.some((r) => r.id === c.id);
          metrics.requests.inc({ kind: c.kind, outcome: fresh ? 'stored' : 'duplicate' });
        }
        for (const c of cancels) {
          const done = cancelled.includes(c.id);
          metrics.requests.inc({ kind: 'cancel', outcome: done ? 'stored' : 'no_change' });
          if (done) metrics.cancelled.inc({ by: c.reason === STOP_REPEAT_REASON ? 'handler' : 'request' });
          logger.info(
            { scheduleId: c.id, reason: c.reason, cancelled: done },
            done ? 'schedule cancelled' : 'cancel request for a schedule that is not active',
          );
        }
        if (created.length > 0) logger.debug({ stored: created.length, requests: creates.length }, 'schedules stored');
      } catch (err) {
        logger.error(
          { err, requests: settled.length },
          'storing schedule requests failed; they will be delivered again',
        );
        for (const m of settled) m.nak(RETRY_DELAY_MS);
        settled.length = 0;
      }
    }
    if (endedJobs.length > 0) {
      try {
        // Before the cancel requests are acked: one whose event was not stored comes back, and
        // its schedule (already cancelled) sends the event again.
        await publishCancelled(deps.events, topology, endedJobs);
      } catch (err) {
        logger.error(
          { err, schedules: endedJobs.length },
          'job.cancelled events not stored; the requests will come back',
        );
        for (const m of cancelMsgs) m.nak(RETRY_DELAY_MS);
        const back = new Set(cancelMsgs);
        settled.splice(0, settled.length, ...settled.filter((m) => !back.has(m)));
      }
    }
    for (const m of settled) m.ack();
    for (const { m, problem } of invalid) {
      metrics.requests.inc({ kind: 'invalid', outcome: 'rejected' });
      logger.error({ subject: m.subject, seq: m.seq, problem }, 'schedule request refused');
      // Terminated, not redelivered: it would fail the same way every time.
      m.term();
    }
  }

  function flushSoon(): void {
    if (queued) return;
    queued = true;
    // Runs after the messages already buffered by the client have been pushed, so they share
    // a transaction; flushes run one after another.
    setImmediate(() => {
      queued = false;
      enqueueFlush();
    });
  }

  // Flushes run one after another; one that fails (it has already handed its requests back)
  // must not stop the ones after it.
  function enqueueFlush(): Promise<void> {
    chain = chain.then(flush).catch((err: unknown) => logger.error({ err }, 'storing schedule requests failed'));
    return chain;
  }

  async function flush(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.slice(0, deps.maxBatch);
      buffer = buffer.slice(batch.length);
      await store(batch);
    }
  }

  return {
    async start(): Promise<void> {
      const consumer = await deps.js.consumers.get(topology.streams.schedule, deps.consumerName);
      messages = await consumer.consume({ max_messages: deps.maxBatch });
      running = true;
      loop = (async () => {
        for await (const m of messages!) {
          buffer.push(m);
          if (buffer.length >= deps.maxBatch) {
            // Enough for a full transaction: store it before taking more (backpressure).
            await enqueueFlush();
          } else flushSoon();
        }
      })()
        .catch((err: unknown) => {
          if (!stopping) logger.fatal({ err }, 'schedule request consumer failed');
        })
        .finally(() => {
          running = false;
        });
    },

    healthy(): boolean {
      return running && !stopping;
    },

    /** Stops taking requests, then stores (and acks) the ones already taken. */
    async stop(deadline: Deadline): Promise<void> {
      stopping = true;
      await messages?.close().catch(() => undefined);
      await within(loop ?? Promise.resolve(), 2_000);
      await within(enqueueFlush(), deadline.remainingMs());
    },
  };
}
