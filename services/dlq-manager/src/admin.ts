import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import { parseDuration } from '@redrive/config';
import { HttpError } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import { parseRfc3339, subjectMatches, type DeadLetterReason, type Topology } from '@redrive/messaging';
import { isConnectionFailure, type Pool } from '@redrive/store';
import { v7 as uuidv7 } from 'uuid';
import { isNoMessage } from './advisories.js';
import { appendAudit, readSummary, readTimeline, type AuditRow, type JobSummary, type TimelineEntry } from './audit.js';
import {
  countMatching,
  deleteDeadLetter,
  deleteResolvedBefore,
  getDeadLetter,
  listDeadLetters,
  markRedriven,
  markResolved,
  matchingIds,
  readStats,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterStats,
} from './dead-letters.js';
import type { DlqMetrics } from './metrics.js';
import { buildRedrive } from './redrive.js';
import { inTransaction } from './transaction.js';

/** Who asks for a change: a token's name over HTTP, `nats:<name>` over NATS, `retention` for the schedule. */
export interface Actor {
  name: string;
}

/** A dead letter as lists show it (no payload, no headers). */
export interface DeadLetterView {
  id: number;
  jobId: string;
  type: string;
  reason: DeadLetterReason;
  errorClass: string | null;
  error: string | null;
  attempts: number;
  originalSubject: string;
  originalSeq: number;
  dlqSeq: number;
  createdAt: string;
  resolved: boolean;
  resolvedAt: string | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  redriveCount: number;
  lastRedrivenAt: string | null;
  lastRedrivenBy: string | null;
  payloadAvailable: boolean;
}

/** One dead letter in full: payload, headers and the job's timeline. */
export interface DeadLetterDetail extends DeadLetterView {
  originalStream: string;
  dlqStream: string;
  recordedAt: string;
  traceId: string | null;
  /** The payload as JSON, when it is JSON. */
  payload?: unknown;
  /** The payload's bytes, when they are not JSON. */
  payloadBase64?: string;
  headers: Record<string, string>;
  summary: JobSummary | null;
  timeline: TimelineEntry[];
}

export interface RedriveRequest {
  /** Run it after this long (30s, 5m, 2h …): published to the retry-scheduler. */
  delay?: string;
  /** Run it at this time (RFC 3339): published to the retry-scheduler. */
  at?: string;
  /** Replaces the payload (any JSON value). */
  payload?: unknown;
  note?: string;
}

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
}

export interface BulkRedriveRequest {
  filter?: DeadLetterFilter;
  dryRun?: boolean;
  delay?: string;
  at?: string;
  note?: string;
}

const MAX_PAGE = 500;
const DEFAULT_PAGE = 50;
const BULK_CHUNK = 100;
const CLEANUP_CHUNK = 1_000;

/** Cursors are opaque to clients: the last id of the page, encoded. */
export function encodeCursor(id: number): string {
  return Buffer.from(`dl:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m = /^dl:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new HttpError(400, 'INVALID_CURSOR', 'cursor is not one this API returned');
  return Number(m[1]);
}

function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

export function toView(dl: DeadLetter & { payloadAvailable?: boolean }): DeadLetterView {
  return {
    id: dl.id,
    jobId: dl.jobId,
    type: dl.type,
    reason: dl.reason,
    errorClass: dl.errorClass,
    error: dl.error,
    attempts: dl.attempts,
    originalSubject: dl.originalSubject,
    originalSeq: dl.originalSeq,
    dlqSeq: dl.dlqSeq,
    createdAt: dl.createdAt.toISOString(),
    resolved: dl.resolvedAt !== null,
    resolvedAt: iso(dl.resolvedAt),
    resolvedBy: dl.resolvedBy,
    resolutionNote: dl.resolutionNote,
    redriveCount: dl.redriveCount,
    lastRedrivenAt: iso(dl.lastRedrivenAt),
    lastRedrivenBy: dl.lastRedrivenBy,
    payloadAvailable: dl.payloadAvailable ?? dl.payload !== null,
  };
}

/** A payload as JSON when it parses, otherwise as base64. */
export function payloadFields(payload: Uint8Array | null): { payload?: unknown; payloadBase64?: string } {
  if (!payload) return {};
  try {
    return { payload: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) };
  } catch {
    return { payloadBase64: Buffer.from(payload).toString('base64') };
  }
}

function dateParam(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const d = parseRfc3339(value);
  if (!d)
    throw new HttpError(400, 'VALIDATION_ERROR', `${name} must be an RFC 3339 time with an offset, got "${value}"`);
  return d.toISOString();
}

function checkedFilter(f: DeadLetterFilter = {}): DeadLetterFilter {
  const from = dateParam('from', f.from);
  const to = dateParam('to', f.to);
  return { ...f, ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

/** When a delayed redrive is due, from `delay` or `at`; undefined means now. */
export function dueAtOf(req: { delay?: string; at?: string }, now: Date): Date | undefined {
  if (req.delay !== undefined && req.at !== undefined)
    throw new HttpError(400, 'VALIDATION_ERROR', 'give either delay or at, not both');
  if (req.delay !== undefined) {
    const ms = parseDuration(req.delay);
    if (ms === undefined)
      throw new HttpError(400, 'VALIDATION_ERROR', `delay must be a duration such as 30s, 5m or 2h`);
    return ms > 0 ? new Date(now.getTime() + ms) : undefined;
  }
  if (req.at !== undefined) {
    const at = parseRfc3339(req.at);
    if (!at) throw new HttpError(400, 'VALIDATION_ERROR', `at must be an RFC 3339 time with an offset`);
    return at.getTime() > now.getTime() ? at : undefined;
  }
  return undefined;
}

export interface AdminDeps {
  pool: Pool;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  metrics: DlqMetrics;
  logger: Logger;
  /** Resolved dead letters are removed this long after they were resolved. */
  retentionMs: number;
  now?: () => Date;
}

function auditRow(kind: string, actor: Actor, dl: { jobId: string; type: string }, at: Date, extra: object): AuditRow {
  return {
    id: uuidv7(),
    jobId: dl.jobId,
    type: dl.type,
    kind,
    attempt: null,
    errorClass: null,
    error: null,
    delayMs: null,
    durationMs: null,
    traceId: null,
    actor: actor.name,
    at,
    extra: extra as Record<string, unknown>,
  };
}

/**
 * The operations of the DLQ, shared by the HTTP API and the NATS endpoints. Every change is
 * written to the audit trail with who made it, in the same transaction as the change itself,
 * so a change is never without its record or a record without its change.
 */
export function createAdmin(deps: AdminDeps) {
  const { pool, topology, logger } = deps;
  const now = deps.now ?? (() => new Date());

  async function notFound(id: number): Promise<never> {
    throw new HttpError(404, 'NOT_FOUND', `no dead letter ${id}`);
  }

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

  async function redriveOne(
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
      const dl = (await getDeadLetter(client, id, { forUpdate: true })) ?? (await notFound(id));
      if (!edited && !dl.payload) {
        throw new HttpError(
          409,
          'PAYLOAD_UNAVAILABLE',
          `dead letter ${id} has no payload (the original was gone when it was dead-lettered); redrive it with a payload`,
        );
      }
      if (!topology.parseJobSubject(dl.originalSubject) || !(await served(dl.originalSubject, servedCache))) {
        throw new HttpError(
          422,
          'NO_WORKER',
          `no worker consumes ${dl.originalSubject}, so the job would be dropped; start a sync-worker for type "${dl.type}" first`,
        );
      }
      const msg = buildRedrive(dl, { topology, ...(edited ? { payload: edited } : {}), ...(dueAt ? { dueAt } : {}) });
      let ack: PubAck;
      try {
        ack = await deps.js.publish(msg.subject, msg.data, { headers: msg.headers, msgID: msg.msgId, timeout: 5_000 });
      } catch (err) {
        throw new HttpError(
          503,
          'NOT_PUBLISHED',
          `JetStream did not store the redriven job, nothing changed; retry: ${(err as Error).message}`,
          { 'retry-after': '1' },
        );
      }
      await markRedriven(client, dl.id, actor.name, req.note ?? null, at);
      await appendAudit(client, [
        {
          ...auditRow('job.redriven', actor, dl, at, {
            deadLetterId: dl.id,
            subject: msg.subject,
            target: msg.target,
            stream: ack.stream,
            seq: ack.seq,
            msgId: msg.msgId,
            life: msg.life,
            payloadEdited: edited !== undefined,
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
      };
    });
  }

  /** Removes DLQ stream messages whose entries are gone, so a replay of the stream cannot bring them back. */
  async function forgetStreamMessages(entries: { dlqStream: string; dlqSeq: number }[]): Promise<void> {
    for (const e of entries) {
      try {
        await deps.jsm.streams.deleteMessage(e.dlqStream, e.dlqSeq, false);
      } catch (err) {
        if (!isNoMessage(err)) logger.warn({ err, ...e }, 'DLQ stream message not deleted');
      }
    }
  }

  return guarded({
    async list(
      query: DeadLetterFilter & { limit?: number; cursor?: string },
    ): Promise<{ items: DeadLetterView[]; nextCursor: string | null }> {
      const { limit: rawLimit, cursor, ...filter } = query;
      const limit = Math.min(MAX_PAGE, rawLimit ?? DEFAULT_PAGE);
      const before = cursor ? decodeCursor(cursor) : undefined;
      const rows = await listDeadLetters(pool, checkedFilter(filter), {
        limit: limit + 1,
        ...(before !== undefined ? { before } : {}),
      });
      const items = rows.slice(0, limit).map(toView);
      const last = items[items.length - 1];
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
    },

    async get(id: number): Promise<DeadLetterDetail> {
      const dl = (await getDeadLetter(pool, id)) ?? (await notFound(id));
      const [timeline, summary] = await Promise.all([readTimeline(pool, dl.jobId), readSummary(pool, dl.jobId)]);
      return {
        ...toView(dl),
        originalStream: dl.originalStream,
        dlqStream: dl.dlqStream,
        recordedAt: dl.recordedAt.toISOString(),
        traceId: dl.traceId,
        ...payloadFields(dl.payload),
        headers: dl.headers,
        summary: summary ?? null,
        timeline,
      };
    },

    async resolve(id: number, req: { note?: string }, actor: Actor): Promise<DeadLetterView> {
      const at = now();
      const updated = await inTransaction(pool, async (client) => {
        const dl = (await markResolved(client, id, actor.name, req.note ?? null, at)) ?? (await notFound(id));
        await appendAudit(client, [
          auditRow('dead_letter.resolved', actor, dl, at, {
            deadLetterId: id,
            ...(req.note ? { note: req.note } : {}),
          }),
        ]);
        return dl;
      });
      deps.metrics.changes.inc({ op: 'resolve' });
      logger.info({ deadLetterId: id, jobId: updated.jobId, by: actor.name }, 'dead letter resolved');
      return toView(updated);
    },

    redrive: (id: number, req: RedriveRequest, actor: Actor) => redriveOne(id, req, actor),

    async bulkRedrive(
      req: BulkRedriveRequest,
      actor: Actor,
    ): Promise<{
      dryRun: boolean;
      matched: number;
      payloadUnavailable: number;
      redriven?: number;
      failed?: { id: number; code: string; message: string }[];
    }> {
      // Unless the filter says otherwise, a bulk redrive is about the entries still open.
      const filter = checkedFilter({ resolved: false, ...req.filter });
      dueAtOf(req, now()); // refuse a bad delay before anything runs
      const counted = await countMatching(pool, filter);
      if (req.dryRun) return { dryRun: true, matched: counted.count, payloadUnavailable: counted.payloadUnavailable };
      let after = 0;
      let redriven = 0;
      const failed: { id: number; code: string; message: string }[] = [];
      const bulk = uuidv7();
      const servedCache = new Map<string, boolean>();
      for (;;) {
        // Ids are read in chunks after the last one seen: entries redriven here become
        // resolved and fall out of the filter, which must not shift the pages.
        const ids = await matchingIds(pool, filter, { limit: BULK_CHUNK, after });
        if (ids.length === 0) break;
        for (const id of ids) {
          after = id;
          try {
            await redriveOne(
              id,
              { ...(req.delay ? { delay: req.delay } : {}), ...(req.at ? { at: req.at } : {}), note: req.note },
              actor,
              { bulk },
              servedCache,
            );
            redriven++;
          } catch (err) {
            if (!(err instanceof HttpError)) throw err;
            failed.push({ id, code: err.code, message: err.message });
          }
        }
      }
      logger.info({ matched: counted.count, redriven, failed: failed.length, by: actor.name, bulk }, 'bulk redrive');
      return {
        dryRun: false,
        matched: counted.count,
        payloadUnavailable: counted.payloadUnavailable,
        redriven,
        failed,
      };
    },

    async remove(id: number, actor: Actor): Promise<DeadLetterView> {
      const at = now();
      const gone = await inTransaction(pool, async (client) => {
        const dl = (await deleteDeadLetter(client, id)) ?? (await notFound(id));
        await appendAudit(client, [
          auditRow('dead_letter.deleted', actor, dl, at, {
            deadLetterId: id,
            reason: dl.reason,
            dlqSeq: dl.dlqSeq,
            resolved: dl.resolvedAt !== null,
          }),
        ]);
        return dl;
      });
      await forgetStreamMessages([gone]);
      deps.metrics.changes.inc({ op: 'delete' });
      logger.info({ deadLetterId: id, jobId: gone.jobId, by: actor.name }, 'dead letter deleted');
      return toView(gone);
    },

    stats(query: { hours?: number }): Promise<DeadLetterStats> {
      return readStats(pool, Math.min(24 * 31, Math.max(1, query.hours ?? 24)), now());
    },

    /** Removes resolved entries resolved more than `olderThan` (default: the configured retention) ago. */
    async cleanup(req: { olderThan?: string }, actor: Actor): Promise<{ deleted: number; cutoff: string }> {
      let ageMs = deps.retentionMs;
      if (req.olderThan !== undefined) {
        const ms = parseDuration(req.olderThan);
        if (ms === undefined)
          throw new HttpError(400, 'VALIDATION_ERROR', 'olderThan must be a duration such as 30d, 12h or 90m');
        ageMs = ms;
      }
      const at = now();
      const cutoff = new Date(at.getTime() - ageMs);
      let deleted = 0;
      for (;;) {
        const gone = await inTransaction(pool, async (client) => {
          const rows = await deleteResolvedBefore(client, cutoff, CLEANUP_CHUNK);
          await appendAudit(
            client,
            rows.map((r) =>
              auditRow('dead_letter.expired', actor, r, at, {
                deadLetterId: r.id,
                resolvedAt: r.resolvedAt.toISOString(),
                cutoff: cutoff.toISOString(),
              }),
            ),
          );
          return rows;
        });
        deleted += gone.length;
        await forgetStreamMessages(gone);
        if (gone.length < CLEANUP_CHUNK) break;
      }
      if (deleted > 0) deps.metrics.changes.inc({ op: 'cleanup' }, deleted);
      logger.info({ deleted, cutoff, by: actor.name }, 'retention cleanup');
      return { deleted, cutoff: cutoff.toISOString() };
    },

    async timeline(jobId: string): Promise<{ jobId: string; summary: JobSummary | null; events: TimelineEntry[] }> {
      const [events, summary] = await Promise.all([readTimeline(pool, jobId), readSummary(pool, jobId)]);
      if (events.length === 0 && !summary) throw new HttpError(404, 'NOT_FOUND', `nothing is known about job ${jobId}`);
      return { jobId, summary: summary ?? null, events };
    },
  });
}

/** Answers 503 instead of 500 for every operation while Postgres cannot be reached. */
function guarded<T extends Record<string, (...args: never[]) => Promise<unknown>>>(ops: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, op] of Object.entries(ops)) {
    out[name] = async (...args: never[]) => {
      try {
        return await op(...args);
      } catch (err) {
        if (isConnectionFailure(err)) {
          throw new HttpError(503, 'STORE_UNAVAILABLE', 'Postgres is unavailable; retry later', {
            'retry-after': '5',
          });
        }
        throw err;
      }
    };
  }
  return out as T;
}

export type Admin = ReturnType<typeof createAdmin>;
