import { parseDuration } from '@redrive/config';
import { inTransaction } from '@redrive/store';
import { changeRow, type Actor } from '../audit/changes.js';
import { appendAudit, readSummary, readTimeline, type JobSummary, type TimelineEntry } from '../audit/store.js';
import { expireResolved, forgetStreamMessages } from '../dead-letters/cleanup.js';
import { OperationError } from '../dead-letters/errors.js';
import {
  createRedriver,
  type BulkRedriveRequest,
  type RedriveRequest,
  type RedriverDeps,
} from '../dead-letters/redrive.js';
import {
  deleteDeadLetter,
  getDeadLetter,
  listDeadLetters,
  markResolved,
  readStats,
  type DeadLetterFilter,
  type DeadLetterStats,
} from '../dead-letters/store.js';
import {
  checkedFilter,
  decodeCursor,
  encodeCursor,
  payloadFields,
  toView,
  type DeadLetterDetail,
  type DeadLetterView,
} from '../dead-letters/views.js';
import { pruneActivity } from '../queues/activity.js';
import { guarded } from './guarded.js';
import { createBulkRedrives } from './tracked.js';

export type { Actor } from '../audit/changes.js';
export type { DryRunResult, OperationView } from './tracked.js';
export type { BulkRedriveRequest, RedriveRequest } from '../dead-letters/redrive.js';

const MAX_PAGE = 500;
export const DEFAULT_BULK_REDRIVE_MAX = 1_000;
const DEFAULT_PAGE = 50;
const ACTIVITY_KEPT_MS = 2 * 86_400_000;

export interface AdminDeps extends Omit<RedriverDeps, 'now'> {
  /** Resolved dead letters are removed this long after they were resolved. */
  retentionMs: number;
  /** The most entries one bulk redrive may take (DLQ_BULK_REDRIVE_MAX); 1,000 unless given. */
  bulkRedriveMax?: number;
  now?: () => Date;
}

function notFound(id: number): never {
  throw new OperationError('NOT_FOUND', `no dead letter ${id}`);
}

/**
 * The operations of the DLQ, shared by the HTTP API and the NATS endpoints; they refuse with
 * an OperationError, which each transport maps to its own errors. Every change is written to
 * the audit trail with who made it, in the same transaction as the change itself, so a change
 * is never without its record or a record without its change.
 */
export function createAdmin(deps: AdminDeps) {
  const { pool, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const redriver = createRedriver({ ...deps, now });
  const bulk = createBulkRedrives({ pool, redriver, logger, cap: deps.bulkRedriveMax ?? DEFAULT_BULK_REDRIVE_MAX });

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
      const dl = (await getDeadLetter(pool, id)) ?? notFound(id);
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
        const dl = (await markResolved(client, id, actor.name, req.note ?? null, at)) ?? notFound(id);
        await appendAudit(client, [
          changeRow('dead_letter.resolved', actor, dl, at, {
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

    redrive: (id: number, req: RedriveRequest, actor: Actor) => redriver.redrive(id, req, actor),

    /** A dry run's count, or the started operation (tracked.ts). */
    bulkRedrive: (req: BulkRedriveRequest, actor: Actor) => bulk.start(req, actor),

    operation: (id: string) => bulk.get(id),

    cancelOperation: (id: string, actor: Actor) => bulk.cancel(id, actor),

    /** At start: running operations whose dlq-manager is gone are marked interrupted. */
    sweepOperations: () => bulk.sweepStale(),

    /** At shutdown: the operations this process runs stop, marked interrupted. */
    stopOperations: () => bulk.stop(),

    async remove(id: number, actor: Actor): Promise<DeadLetterView> {
      const at = now();
      const gone = await inTransaction(pool, async (client) => {
        const dl = (await deleteDeadLetter(client, id)) ?? notFound(id);
        await appendAudit(client, [
          changeRow('dead_letter.deleted', actor, dl, at, {
            deadLetterId: id,
            reason: dl.reason,
            dlqSeq: dl.dlqSeq,
            resolved: dl.resolvedAt !== null,
          }),
        ]);
        return dl;
      });
      await forgetStreamMessages(deps.jsm, logger, [gone]);
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
          throw new OperationError('VALIDATION_ERROR', 'olderThan must be a duration such as 30d, 12h or 90m');
        ageMs = ms;
      }
      const at = now();
      const cutoff = new Date(at.getTime() - ageMs);
      const deleted = await expireResolved(deps, cutoff, actor, at);
      // The queue stats read the last hour of audit_activity; two days are kept.
      await pruneActivity(pool, new Date(at.getTime() - ACTIVITY_KEPT_MS));
      if (deleted > 0) deps.metrics.changes.inc({ op: 'cleanup' }, deleted);
      logger.info({ deleted, cutoff, by: actor.name }, 'retention cleanup');
      return { deleted, cutoff: cutoff.toISOString() };
    },

    async timeline(jobId: string): Promise<{ jobId: string; summary: JobSummary | null; events: TimelineEntry[] }> {
      const [events, summary] = await Promise.all([readTimeline(pool, jobId), readSummary(pool, jobId)]);
      if (events.length === 0 && !summary) throw new OperationError('NOT_FOUND', `nothing is known about job ${jobId}`);
      return { jobId, summary: summary ?? null, events };
    },
  });
}

export type Admin = ReturnType<typeof createAdmin>;
