import type { Logger } from '@redrive/lifecycle';
import type { Pool } from '@redrive/store';
import { v7 as uuidv7 } from 'uuid';
import type { Actor } from '../audit/changes.js';
import { OperationError } from '../dead-letters/errors.js';
import type { BulkPlan, BulkRedriveRequest, createRedriver } from '../dead-letters/redrive.js';

/**
 * Bulk redrives as tracked operations: the request is checked and counted at once (a dry run
 * answers with the count; more matches than the cap without `limit` is refused), then the
 * redrive runs in the background of the dlq-manager that accepted it, one entry after another,
 * writing its progress to `admin_operations` after each entry. Any replica reads it and takes a
 * cancel, which the runner sees at its next entry. A running operation whose heartbeat stops
 * (its dlq-manager was killed) is marked `interrupted` by the next dlq-manager that looks; one
 * that stops gracefully marks its own. Interrupted operations are not resumed: running the same
 * request again continues where it stopped, as redriven entries are resolved and no longer match.
 */

export type OperationStatus = 'running' | 'completed' | 'cancelled' | 'failed' | 'interrupted';

export interface OperationView {
  id: string;
  kind: 'bulk-redrive';
  status: OperationStatus;
  request: Record<string, unknown>;
  counts: {
    /** Entries the filter matched when it started. */
    matched: number;
    /** Of those, the ones it works on (the first `limit` in id order, or all). */
    selected: number;
    redriven: number;
    failed: number;
    /** Selected entries not processed (yet, or ever, once it stopped). */
    remaining: number;
    /** Matching entries left out by `limit`. */
    beyondLimit: number;
  };
  errors: { id: number; code: string; message: string }[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  cancelRequestedBy: string | null;
  error: string | null;
}

export interface DryRunResult {
  dryRun: true;
  matched: number;
  payloadUnavailable: number;
  /** The most entries one bulk redrive may take (DLQ_BULK_REDRIVE_MAX). */
  cap: number;
}

/** Failures kept in full on the operation; every failure is counted. */
const MAX_ERRORS = 100;
/** How often a running operation says it is alive, besides after every entry. */
const HEARTBEAT_MS = 5_000;
/** A running operation silent this long has no dlq-manager driving it. */
export const STALE_AFTER_MS = 30_000;
/** How long a cancel waits for the operation to stop before it answers. */
const CANCEL_WAIT_MS = 3_000;

interface Row {
  id: string;
  kind: string;
  status: OperationStatus;
  actor: string;
  request: Record<string, unknown>;
  matched: number;
  selected: number;
  upto_id: string;
  redriven: number;
  failed: number;
  errors: { id: number; code: string; message: string }[];
  last_id: string;
  cancel_requested_by: string | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

function toView(r: Row): OperationView {
  const processed = r.redriven + r.failed;
  return {
    id: r.id,
    kind: 'bulk-redrive',
    status: r.status,
    request: r.request,
    counts: {
      matched: r.matched,
      selected: r.selected,
      redriven: r.redriven,
      failed: r.failed,
      // A completed operation found every entry still there it could (others may have been
      // resolved or deleted meanwhile): nothing remains.
      remaining: r.status === 'completed' ? 0 : Math.max(0, r.selected - processed),
      beyondLimit: r.matched - r.selected,
    },
    errors: r.errors,
    createdBy: r.actor,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    cancelRequestedBy: r.cancel_requested_by,
    error: r.error,
  };
}

type Redriver = Pick<ReturnType<typeof createRedriver>, 'planBulk' | 'nextIds' | 'redriveInBulk'>;

export function createBulkRedrives(deps: {
  pool: Pool;
  redriver: Redriver;
  logger: Logger;
  /** The most entries one bulk redrive may take (DLQ_BULK_REDRIVE_MAX). */
  cap: number;
}) {
  const { pool, redriver, logger, cap } = deps;
  const driving = new Map<string, Promise<void>>();
  let stopping = false;

  async function read(id: string): Promise<Row | undefined> {
    const { rows } = await pool.query<Row>('SELECT * FROM admin_operations WHERE id = $1', [id]);
    return rows[0];
  }

  /** Marks running operations no dlq-manager drives any more (their heartbeat stopped) as interrupted. */
  async function sweepStale(): Promise<number> {
    const { rowCount } = await pool.query(
      `UPDATE admin_operations
          SET status = 'interrupted', finished_at = now(),
              error = 'the dlq-manager running it stopped (killed or restarted); run the request again to redrive the rest'
        WHERE status = 'running' AND updated_at < now() - make_interval(secs => $1) AND NOT (id = ANY($2))`,
      [STALE_AFTER_MS / 1000, [...driving.keys()]],
    );
    if (rowCount) logger.warn({ operations: rowCount }, 'running operations without a dlq-manager marked interrupted');
    return rowCount ?? 0;
  }

  async function finish(id: string, status: OperationStatus, error: string | null = null): Promise<void> {
    await pool.query(
      `UPDATE admin_operations SET status = $2, error = $3, finished_at = now(), updated_at = now()
        WHERE id = $1 AND status = 'running'`,
      [id, status, error],
    );
  }

  async function drive(id: string, req: BulkRedriveRequest, plan: BulkPlan, selected: number, actor: Actor) {
    const servedCache = new Map<string, boolean>();
    const gapMs = req.perSecond ? 1_000 / req.perSecond : 0;
    let after = 0;
    let processed = 0;
    let redriven = 0;
    let failed = 0;
    const errors: { id: number; code: string; message: string }[] = [];
    const heartbeat = setInterval(
      () =>
        void pool
          .query(`UPDATE admin_operations SET updated_at = now() WHERE id = $1 AND status = 'running'`, [id])
          .catch((err: unknown) => logger.warn({ err, operation: id }, 'operation heartbeat not written')),
      HEARTBEAT_MS,
    );
    try {
      for (;;) {
        const ids = processed < selected ? await redriver.nextIds(plan, after, selected - processed) : [];
        if (ids.length === 0) break;
        for (const dlId of ids) {
          if (stopping) {
            await finish(id, 'interrupted', 'dlq-manager stopped; run the request again to redrive the rest');
            logger.warn({ operation: id, processed, selected }, 'bulk redrive interrupted by shutdown');
            return;
          }
          const began = Date.now();
          try {
            await redriver.redriveInBulk(dlId, req, actor, id, servedCache);
            redriven++;
          } catch (err) {
            if (!(err instanceof OperationError)) throw err;
            failed++;
            if (errors.length < MAX_ERRORS) errors.push({ id: dlId, code: err.code, message: err.message });
          }
          processed++;
          after = dlId;
          const { rows } = await pool.query<{ cancel_requested_by: string | null }>(
            `UPDATE admin_operations SET redriven = $2, failed = $3, errors = $4::jsonb, last_id = $5, updated_at = now()
              WHERE id = $1 RETURNING cancel_requested_by`,
            [id, redriven, failed, JSON.stringify(errors), dlId],
          );
          if (rows[0]?.cancel_requested_by) {
            await finish(id, 'cancelled');
            logger.info(
              { operation: id, processed, selected, by: rows[0].cancel_requested_by },
              'bulk redrive cancelled',
            );
            return;
          }
          if (gapMs > 0) {
            const wait = gapMs - (Date.now() - began);
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          }
        }
      }
      await finish(id, 'completed');
      logger.info({ operation: id, matched: plan.matched, redriven, failed, by: actor.name }, 'bulk redrive completed');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.error({ err, operation: id, processed, selected }, 'bulk redrive failed');
      await pool
        .query(
          `UPDATE admin_operations SET redriven = $2, failed = $3, errors = $4::jsonb, last_id = $5 WHERE id = $1`,
          [id, redriven, failed, JSON.stringify(errors), after],
        )
        .then(() => finish(id, 'failed', `stopped after ${processed} of ${selected}: ${message}`))
        .catch((e: unknown) =>
          logger.error({ err: e, operation: id }, 'operation not marked failed; it will show interrupted'),
        );
    } finally {
      clearInterval(heartbeat);
    }
  }

  return {
    /**
     * Checks and counts a bulk redrive; a dry run answers with the count, otherwise the
     * operation is recorded and started, and its first view returned.
     */
    async start(req: BulkRedriveRequest, actor: Actor): Promise<DryRunResult | OperationView> {
      if (req.limit !== undefined && req.limit > cap)
        throw new OperationError(
          'VALIDATION_ERROR',
          `limit ${req.limit} is above the cap of ${cap} entries per bulk redrive (DLQ_BULK_REDRIVE_MAX)`,
        );
      const plan = await redriver.planBulk(req);
      if (req.dryRun) return { dryRun: true, matched: plan.matched, payloadUnavailable: plan.payloadUnavailable, cap };
      if (req.limit === undefined && plan.matched > cap)
        throw new OperationError(
          'VALIDATION_ERROR',
          `${plan.matched} dead letters match, more than the cap of ${cap} per bulk redrive (DLQ_BULK_REDRIVE_MAX); ` +
            `narrow the filter, or give "limit" (at most ${cap}) to redrive the first ones in id order`,
        );
      if (stopping) throw new OperationError('STORE_UNAVAILABLE', 'dlq-manager is stopping; retry', 5);
      const selected = Math.min(plan.matched, req.limit ?? cap);
      const id = uuidv7();
      const request = { ...req, filter: plan.filter };
      const { rows } = await pool.query<Row>(
        `INSERT INTO admin_operations (id, kind, status, actor, request, matched, selected, upto_id)
         VALUES ($1, 'bulk-redrive', 'running', $2, $3::jsonb, $4, $5, $6) RETURNING *`,
        [id, actor.name, JSON.stringify(request), plan.matched, selected, plan.uptoId],
      );
      logger.info({ operation: id, matched: plan.matched, selected, by: actor.name }, 'bulk redrive started');
      const run = drive(id, req, plan, selected, actor).finally(() => driving.delete(id));
      driving.set(id, run);
      return toView(rows[0]!);
    },

    async get(id: string): Promise<OperationView> {
      await sweepStale();
      const row = await read(id);
      if (!row) throw new OperationError('NOT_FOUND', `no operation ${id}`);
      return toView(row);
    },

    /** Asks a running operation to stop before its next entry; waits a moment for it to. */
    async cancel(id: string, actor: Actor): Promise<OperationView> {
      await sweepStale();
      const { rowCount } = await pool.query(
        `UPDATE admin_operations SET cancel_requested_by = $2
          WHERE id = $1 AND status = 'running' AND cancel_requested_by IS NULL`,
        [id, actor.name],
      );
      let row = await read(id);
      if (!row) throw new OperationError('NOT_FOUND', `no operation ${id}`);
      if (!rowCount && row.status !== 'running')
        throw new OperationError('OPERATION_FINISHED', `operation ${id} is already ${row.status}`);
      logger.info({ operation: id, by: actor.name }, 'cancel of a bulk redrive asked');
      for (let waited = 0; row.status === 'running' && waited < CANCEL_WAIT_MS; waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
        row = (await read(id)) ?? row;
      }
      return toView(row);
    },

    sweepStale,

    /** At shutdown: every operation this process drives stops before its next entry, marked interrupted. */
    async stop(): Promise<void> {
      stopping = true;
      await Promise.allSettled(driving.values());
    },
  };
}

export type BulkRedrives = ReturnType<typeof createBulkRedrives>;
