import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import type { Topology } from '@redrive/messaging';
import type { Pool } from '@redrive/store';
import { appendAudit, parseEventMessage, type AuditRow } from './store.js';
import type { DlqMetrics } from '../metrics.js';
import { AbandonedError, untilStored } from '@redrive/store';

export interface ProjectorDeps {
  pool: Pool;
  topology: Topology;
  metrics: DlqMetrics;
  logger: Logger;
  stopping: () => boolean;
}

/**
 * Projects the EVENTS stream into the audit trail: each pulled batch is one INSERT (rows whose
 * event id is already stored are skipped), and its messages are acked only after it committed.
 * While Postgres is unreachable the batch is retried with backoff and nothing more is pulled,
 * so events wait in the stream and are caught up, once each, when it returns.
 */
export function createProjector(deps: ProjectorDeps) {
  const { logger, topology, metrics } = deps;
  const root = topology.eventSubject('');

  // How long the last (successful) statement took, apart from any waiting for Postgres.
  let statementMs = 0;
  const write = (rows: AuditRow[]) =>
    untilStored(
      async () => {
        const t = performance.now();
        const n = await appendAudit(deps.pool, rows);
        statementMs = Math.round(performance.now() - t);
        return n;
      },
      {
        what: 'projecting lifecycle events',
        stopping: deps.stopping,
        logger,
        onRetry: () => metrics.storeRetries.inc({ loop: 'audit' }),
      },
    );

  return {
    async handle(msgs: JsMsg[]): Promise<void> {
      const started = performance.now();
      const good: { m: JsMsg; rows: AuditRow[] }[] = [];
      for (const m of msgs) {
        const parsed = parseEventMessage(m.data, {
          id: `${topology.streams.events}:${m.seq}`,
          kind: m.subject.startsWith(root) ? m.subject.slice(root.length) : m.subject,
          at: new Date(m.info.timestampNanos / 1e6),
        });
        if (parsed.ok) {
          good.push({ m, rows: parsed.rows });
          if (parsed.problems.length > 0) {
            metrics.auditEvents.inc({ outcome: 'invalid' }, parsed.problems.length);
            logger.error({ seq: m.seq, subject: m.subject, problems: parsed.problems }, 'lifecycle events not stored');
          }
        } else {
          // A message that cannot be stored stays in the stream (its age limit applies), but
          // must not block the ones behind it.
          metrics.auditEvents.inc({ outcome: 'invalid' });
          logger.error({ seq: m.seq, subject: m.subject, problem: parsed.problem }, 'lifecycle event not stored');
          m.term();
        }
      }
      if (good.length === 0) return;
      const total = good.reduce((n, g) => n + g.rows.length, 0);
      let inserted = 0;
      const refused = new Set<JsMsg>();
      try {
        inserted = await write(good.flatMap((g) => g.rows));
      } catch (err) {
        if (err instanceof AbandonedError) {
          for (const g of good) g.m.nak();
          return;
        }
        // Postgres refused the batch for good: write it message by message so only the bad
        // one is set aside.
        logger.error({ err, size: good.length }, 'batch refused; writing its messages one by one');
        for (const g of good) {
          try {
            inserted += await write(g.rows);
          } catch (rowErr) {
            if (rowErr instanceof AbandonedError) {
              for (const rest of good) if (!refused.has(rest.m)) rest.m.nak();
              return;
            }
            metrics.auditEvents.inc({ outcome: 'invalid' }, g.rows.length);
            logger.error({ err: rowErr, seq: g.m.seq }, 'lifecycle events refused by Postgres');
            g.m.term();
            refused.add(g.m);
          }
        }
      }
      // Acked only now: everything in these messages is committed.
      for (const g of good) if (!refused.has(g.m)) g.m.ack();
      metrics.auditEvents.inc({ outcome: 'inserted' }, inserted);
      metrics.auditEvents.inc({ outcome: 'duplicate' }, Math.max(0, total - inserted));
      metrics.auditBatchSeconds.observe((performance.now() - started) / 1000);
      logger.debug(
        { messages: good.length, events: total, inserted, ms: Math.round(performance.now() - started), statementMs },
        'audit batch written',
      );
    },
  };
}
