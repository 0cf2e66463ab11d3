import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import { parseDuration } from '@redrive/config';
import type { Logger } from '@redrive/lifecycle';
import { carryHeaders, H, msgIds, parseRfc3339, subjectMatches, type MsgHdrs, type Topology } from '@redrive/messaging';
import { createStepStore, inTransaction, type Pool } from '@redrive/store';
import { extractTraceContext, ROOT_CONTEXT, sendInSpan } from '@redrive/telemetry';
import { appendAudit } from '../audit/store.js';
import { changeRow, type Actor } from '../audit/changes.js';
import type { DlqMetrics } from '../metrics.js';
import { OperationError } from './errors.js';
import {
  countMatching,
  getDeadLetter,
  lastMatchingId,
  markRedriven,
  matchingIds,
  type DeadLetterFilter,
} from './store.js';
import { checkedFilter } from './views.js';

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

export interface RedriveRequest {
  /** Run it after this long (30s, 5m, 2h …): published to the retry-scheduler. */
  delay?: string;
  /** Run it at this time (RFC 3339): published to the retry-scheduler. */
  at?: string;
  /** Replaces the payload (any JSON value). */
  payload?: unknown;
  note?: string;
  /**
   * What becomes of the job's ctx.step() checkpoints: "keep" (the default) lets the next life
   * resume after the steps its earlier life completed; "reset" removes them first, so every
   * step runs again.
   */
  steps?: StepsChoice;
}

export type StepsChoice = 'keep' | 'reset';

export interface RedriveResult {
  deadLetterId: number;
  jobId: string;
  subject: string;
  target: string;
  stream: string;
  seq: number;
  duplicate: boolean;
  msgId: string;
  dueAt?: string;
  steps: StepsChoice;
  /** Checkpoints removed by steps "reset". */
  stepsCleared?: number;
}

export interface BulkRedriveRequest {
  filter?: DeadLetterFilter;
  dryRun?: boolean;
  delay?: string;
  at?: string;
  note?: string;
  steps?: StepsChoice;
  /** Redrive the first `limit` matching entries (in id order) when more match. */
  limit?: number;
  /** Redrive at most this many entries a second. */
  perSecond?: number;
}

/** What a bulk redrive will work on, counted when it is asked for. */
export interface BulkPlan {
  filter: DeadLetterFilter;
  matched: number;
  payloadUnavailable: number;
  /** The highest id that matches now: entries recorded later are not part of it. */
  uptoId: number;
}

const BULK_CHUNK = 100;

/** When a delayed redrive is due, from `delay` or `at`; undefined means now. */
export function dueAtOf(req: { delay?: string; at?: string }, now: Date): Date | undefined {
  if (req.delay !== undefined && req.at !== undefined)
    throw new OperationError('VALIDATION_ERROR', 'give either delay or at, not both');
  if (req.delay !== undefined) {
    const ms = parseDuration(req.delay);
    if (ms === undefined)
      throw new OperationError('VALIDATION_ERROR', `delay must be a duration such as 30s, 5m or 2h`);
    return ms > 0 ? new Date(now.getTime() + ms) : undefined;
  }
  if (req.at !== undefined) {
    const at = parseRfc3339(req.at);
    if (!at) throw new OperationError('VALIDATION_ERROR', `at must be an RFC 3339 time with an offset`);
    return at.getTime() > now.getTime() ? at : undefined;
  }
  return undefined;
}

export interface RedriverDeps {
  pool: Pool;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  metrics: DlqMetrics;
  logger: Logger;
  now: () => Date;
}

/**
 * Redrives dead letters, one or all that match a filter: publishes the next life
 * (buildRedrive) and records it on the entry and in the audit trail, in one transaction that
 * holds the entry's row lock across the publish.
 */
export function createRedriver(deps: RedriverDeps) {
  const { pool, topology, logger, now } = deps;
  const stepStore = createStepStore(pool);

  /** Whether a durable consumer on JOBS would receive a message on `subject` (interest retention drops it otherwise). */
  async function served(subject: string, cache?: Map<string, boolean>): Promise<boolean> {
    const known = cache?.get(subject);
    if (known !== undefined) return known;
    const answer = await lookUp(subject);
    cache?.set(subject, answer);
    return answer;
  }

  async function lookUp(subject: string): Promise<boolean> {
    for await (const c of deps.jsm.consumers.list(topology.streams.jobs)) {
      const cfg = c.config as { filter_subject?: string; filter_subjects?: string[] };
      const filters = cfg.filter_subjects?.length ? cfg.filter_subjects : [cfg.filter_subject || '>'];
      if (filters.some((f) => subjectMatches(f, subject))) return true;
    }
    return false;
  }

  async function redrive(
    id: number,
    req: RedriveRequest,
    actor: Actor,
    extra: Record<string, unknown> = {},
    servedCache?: Map<string, boolean>,
  ): Promise<RedriveResult> {
    const at = now();
    const dueAt = dueAtOf(req, at);
    const edited = req.payload !== undefined ? new TextEncoder().encode(JSON.stringify(req.payload)) : undefined;
    return inTransaction(pool, async (client) => {
      // Locked until commit: two redrives of one entry run one after the other and get
      // different message ids, and a retried request reuses the one that did not commit.
      const dl = await getDeadLetter(client, id, { forUpdate: true });
      if (!dl) throw new OperationError('NOT_FOUND', `no dead letter ${id}`);
      if (!edited && !dl.payload) {
        throw new OperationError(
          'PAYLOAD_UNAVAILABLE',
          `dead letter ${id} has no payload (the original was gone when it was dead-lettered); redrive it with a payload`,
        );
      }
      if (!topology.parseJobSubject(dl.originalSubject) || !(await served(dl.originalSubject, servedCache))) {
        throw new OperationError(
          'NO_WORKER',
          `no worker consumes ${dl.originalSubject}, so the job would be dropped; start a sync-worker for type "${dl.type}" first`,
        );
      }
      const msg = buildRedrive(dl, { topology, ...(edited ? { payload: edited } : {}), ...(dueAt ? { dueAt } : {}) });
      const steps = req.steps ?? 'keep';
      let stepsCleared: number | undefined;
      if (steps === 'reset') {
        // Committed before the publish (on a connection of its own, not in this transaction): a
        // worker may start the redriven job at once and must not read the old checkpoints.
        stepsCleared = await stepStore.clear(dl.jobId);
      }
      let ack: PubAck;
      try {
        // In the job's own trace (the context its dead letter carried), so one trace follows the
        // job through its lives.
        ack = await sendInSpan(
          {
            name: 'redrive',
            destination: msg.subject,
            messageId: msg.msgId,
            attributes: { 'redrive.job.id': dl.jobId, 'redrive.dead_letter.id': dl.id, 'redrive.job.life': msg.life },
          },
          extractTraceContext((name) => msg.headers.get(name) || undefined, ROOT_CONTEXT),
          (k, v) => msg.headers.set(k, v),
          () => deps.js.publish(msg.subject, msg.data, { headers: msg.headers, msgID: msg.msgId, timeout: 5_000 }),
        );
      } catch (err) {
        const cleared = stepsCleared !== undefined ? ' (its step checkpoints were reset)' : ', nothing changed';
        throw new OperationError(
          'NOT_PUBLISHED',
          `JetStream did not store the redriven job${cleared}; retry: ${(err as Error).message}`,
          1,
        );
      }
      await markRedriven(client, dl.id, actor.name, req.note ?? null, at);
      await appendAudit(client, [
        {
          ...changeRow('job.redriven', actor, dl, at, {
            deadLetterId: dl.id,
            subject: msg.subject,
            target: msg.target,
            stream: ack.stream,
            seq: ack.seq,
            msgId: msg.msgId,
            life: msg.life,
            payloadEdited: edited !== undefined,
            steps,
            ...(stepsCleared !== undefined ? { stepsCleared } : {}),
            ...(dueAt ? { dueAt: dueAt.toISOString() } : {}),
            ...(req.note ? { note: req.note } : {}),
            ...extra,
          }),
          attempt: 0,
        },
      ]);
      deps.metrics.changes.inc({ op: 'redrive' });
      logger.info(
        { deadLetterId: dl.id, jobId: dl.jobId, subject: msg.subject, seq: ack.seq, dueAt, by: actor.name },
        'dead letter redriven',
      );
      return {
        deadLetterId: dl.id,
        jobId: dl.jobId,
        subject: msg.subject,
        target: msg.target,
        stream: ack.stream,
        seq: ack.seq,
        duplicate: ack.duplicate,
        msgId: msg.msgId,
        ...(dueAt ? { dueAt: dueAt.toISOString() } : {}),
        steps,
        ...(stepsCleared !== undefined ? { stepsCleared } : {}),
      };
    });
  }

  /** What a bulk redrive of this request works on (the open entries unless the filter says otherwise). */
  async function planBulk(req: BulkRedriveRequest): Promise<BulkPlan> {
    const filter = checkedFilter({ resolved: false, ...req.filter });
    dueAtOf(req, now()); // refuse a bad delay before anything runs
    const counted = await countMatching(pool, filter);
    const last = counted.count > 0 ? await lastMatchingId(pool, filter) : 0;
    return { filter, matched: counted.count, payloadUnavailable: counted.payloadUnavailable, uptoId: last };
  }

  /** The ids a bulk redrive takes next: matching, after `after`, in id order, up to `uptoId`. */
  async function nextIds(plan: BulkPlan, after: number, limit: number): Promise<number[]> {
    const ids = await matchingIds(pool, plan.filter, { limit: Math.min(limit, BULK_CHUNK), after });
    return ids.filter((id) => id <= plan.uptoId);
  }

  /** One entry of a bulk redrive: the request's delay, note and steps, the bulk's id in the audit row. */
  function redriveInBulk(
    id: number,
    req: BulkRedriveRequest,
    actor: Actor,
    bulk: string,
    servedCache: Map<string, boolean>,
  ): Promise<RedriveResult> {
    return redrive(
      id,
      {
        ...(req.delay ? { delay: req.delay } : {}),
        ...(req.at ? { at: req.at } : {}),
        ...(req.steps ? { steps: req.steps } : {}),
        ...(req.note ? { note: req.note } : {}),
      },
      actor,
      { bulk },
      servedCache,
    );
  }

  return {
    redrive: (id: number, req: RedriveRequest, actor: Actor) => redrive(id, req, actor),
    planBulk,
    nextIds,
    redriveInBulk,
  };
}
