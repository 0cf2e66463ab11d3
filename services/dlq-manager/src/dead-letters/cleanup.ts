import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import { inTransaction, type Pool } from '@redrive/store';
import { changeRow, type Actor } from '../audit/changes.js';
import { appendAudit } from '../audit/store.js';
import { isNoMessage } from './advisories.js';
import { deleteResolvedBefore } from './store.js';

const CLEANUP_CHUNK = 1_000;

/** Removes DLQ stream messages whose entries are gone, so a replay of the stream cannot bring them back. */
export async function forgetStreamMessages(
  jsm: JetStreamManager,
  logger: Logger,
  entries: { dlqStream: string; dlqSeq: number }[],
): Promise<void> {
  for (const e of entries) {
    try {
      await jsm.streams.deleteMessage(e.dlqStream, e.dlqSeq, false);
    } catch (err) {
      if (!isNoMessage(err)) logger.warn({ err, ...e }, 'DLQ stream message not deleted');
    }
  }
}

/**
 * Removes the entries resolved before `cutoff`, a chunk per transaction with an audit row per
 * entry (`dead_letter.expired`), and then their DLQ stream messages. Returns how many went.
 */
export async function expireResolved(
  deps: { pool: Pool; jsm: JetStreamManager; logger: Logger },
  cutoff: Date,
  actor: Actor,
  at: Date,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const gone = await inTransaction(deps.pool, async (client) => {
      const rows = await deleteResolvedBefore(client, cutoff, CLEANUP_CHUNK);
      await appendAudit(
        client,
        rows.map((r) =>
          changeRow('dead_letter.expired', actor, r, at, {
            deadLetterId: r.id,
            resolvedAt: r.resolvedAt.toISOString(),
            cutoff: cutoff.toISOString(),
          }),
        ),
      );
      return rows;
    });
    deleted += gone.length;
    await forgetStreamMessages(deps.jsm, deps.logger, gone);
    if (gone.length < CLEANUP_CHUNK) return deleted;
  }
}

/**
 * Runs the retention cleanup (`run`, as the actor `retention`) every `intervalMs` (off when 0).
 * Replicas may run it at the same time: each removes what the other has not, and nothing twice.
 */
export function scheduleCleanup(opts: { run: () => Promise<unknown>; intervalMs: number; logger: Logger }) {
  let running: Promise<unknown> | undefined;
  const timer =
    opts.intervalMs > 0
      ? setInterval(() => {
          if (running) return;
          running = opts
            .run()
            .catch((err: unknown) => opts.logger.warn({ err }, 'scheduled cleanup failed; will run again'))
            .finally(() => (running = undefined));
        }, opts.intervalMs)
      : undefined;
  timer?.unref();
  return {
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
