import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import {
  deletePause,
  isJobType,
  pauseKey,
  pauseOf,
  PRIORITIES,
  putPause,
  queueJobId,
  type EventPublisher,
  type PauseMap,
  type PauseRecord,
  type PauseWatch,
  type Priority,
  type Topology,
} from '@redrive/messaging';
import type { Pool } from '@redrive/store';
import type { Actor } from '../audit/changes.js';
import { OperationError } from '../dead-letters/errors.js';
import { countUnresolved } from '../dead-letters/store.js';
import { guarded } from '../operations/guarded.js';
import { readActivity, type ActivityCounts } from './activity.js';
import { readScheduled, scheduledKey, type ScheduledCounts } from './scheduled.js';
import { readQueueStats, type LaneStats } from './stats.js';

/** How long one reading of the queue stats is reused: every request within it costs nothing. */
export const QUEUE_STATS_CACHE_MS = 1_500;
/** The oldest reading answered while a new one is made; older, a request waits for the new one. */
const STALE_MS = 10_000;

export interface PauseView {
  by: string;
  at: string;
  note?: string;
}

export interface LaneView extends ScheduledCounts {
  lane: Priority;
  waiting: number;
  running: number;
  redelivered: number;
  oldestWaitingAt: string | null;
  oldestWaitingSeconds: number | null;
  workers: number;
  paused: boolean;
  pause?: PauseView;
}

export interface TypeView extends ScheduledCounts {
  type: string;
  /** The whole type is paused (every lane); a lane's own pause shows on the lane. */
  paused: boolean;
  pause?: PauseView;
  waiting: number;
  running: number;
  oldestWaitingSeconds: number | null;
  /** Worker replicas ready to take a job of the type now (the most of any lane). */
  workers: number;
  lastMinute: ActivityCounts;
  lastHour: ActivityCounts;
  deadLetters: { unresolved: number };
  lanes: LaneView[];
}

export interface QueueStatsView {
  /** When the counts were read (they are reused for QUEUE_STATS_CACHE_MS). */
  readAt: string;
  types: TypeView[];
}

export interface PauseRequest {
  type: string;
  lane?: Priority;
  note?: string;
}

export interface PauseAnswer {
  type: string;
  lane?: Priority;
  paused: boolean;
  pause?: PauseView;
}

interface Reading {
  at: number;
  lanes: LaneStats[];
  activity: Map<string, { lastMinute: ActivityCounts; lastHour: ActivityCounts }>;
  scheduled: Map<string, ScheduledCounts>;
  unresolved: Map<string, number>;
}

const ZERO: ActivityCounts = { succeeded: 0, failed: 0, deadLettered: 0 };
const NO_SCHEDULES: ScheduledCounts = { delayed: 0, retrying: 0, repeating: 0 };

const viewOf = (p: PauseRecord | undefined): PauseView | undefined =>
  p ? { by: p.by, at: p.at, ...(p.note ? { note: p.note } : {}) } : undefined;

function check(req: { type: string; lane?: string }): void {
  if (!isJobType(req.type))
    throw new OperationError(
      'VALIDATION_ERROR',
      `type must be a job type ([a-z0-9][a-z0-9_-]*, at most 64), got "${req.type}"`,
    );
  if (req.lane !== undefined && !(PRIORITIES as readonly string[]).includes(req.lane))
    throw new OperationError('VALIDATION_ERROR', `lane must be one of ${PRIORITIES.join(', ')}, got "${req.lane}"`);
}

/**
 * The queues as an operator sees them: per type and lane, what JetStream's worker consumers say
 * (waiting, running, oldest, pull requests), what the scheduler holds (delayed, retrying), what
 * finished lately (audit_activity), the unresolved dead letters and the pauses; and pausing and
 * resuming a type or a lane (the PAUSES bucket every worker watches), each recorded in the
 * audit trail as a queue.paused or queue.resumed event with its actor.
 */
export function createQueues(deps: {
  pool: Pool;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  pauses: PauseWatch;
  events: EventPublisher;
  logger: Logger;
  now?: () => number;
}) {
  const { pool, topology, pauses, logger } = deps;
  const now = deps.now ?? Date.now;

  const load = async (): Promise<Reading> => {
    const at = now();
    const [lanes, activity, scheduled, unresolved] = await Promise.all([
      readQueueStats(deps.jsm, topology),
      readActivity(pool, new Date(at)),
      readScheduled(pool, topology),
      countUnresolved(pool),
    ]);
    const byType = new Map<string, number>();
    for (const u of unresolved) byType.set(u.type, (byType.get(u.type) ?? 0) + u.count);
    return {
      at,
      lanes,
      activity: new Map(activity.map((a) => [a.type, a])),
      scheduled,
      unresolved: byType,
    };
  };
  // Stale while revalidate: a reading younger than QUEUE_STATS_CACHE_MS is answered as it is;
  // an older one (up to STALE_MS) is answered too while one new reading is made behind it, so a
  // request never waits for JetStream and Postgres unless nothing recent is known (the first
  // request, or after a quiet spell). `readAt` says how old the answer is.
  let last: Reading | undefined;
  let reading: Promise<Reading> | undefined;
  const read = (): Promise<Reading> => {
    const age = last ? now() - last.at : Infinity;
    if (last && age < QUEUE_STATS_CACHE_MS) return Promise.resolve(last);
    const next = (reading ??= load()
      .then((r) => (last = r))
      .finally(() => (reading = undefined)));
    if (last && age < STALE_MS) {
      next.catch((err: unknown) => logger.warn({ err }, 'could not read the queue stats'));
      return Promise.resolve(last);
    }
    return next;
  };

  function build(r: Reading, current: PauseMap, only?: string): QueueStatsView {
    const t = now();
    const age = (at: Date | undefined) => (at ? Math.max(0, Math.round((t - at.getTime()) / 1000)) : null);
    const types = new Set<string>([...r.lanes.map((l) => l.type), ...r.activity.keys(), ...r.unresolved.keys()]);
    for (const p of current.values()) types.add(p.type);
    const out: TypeView[] = [];
    for (const type of [...types].sort()) {
      if (only !== undefined && type !== only) continue;
      const lanes: LaneView[] = r.lanes
        .filter((l) => l.type === type)
        .map((l) => {
          const pause = pauseOf(current, type, l.lane);
          return {
            lane: l.lane,
            waiting: l.waiting,
            running: l.running,
            redelivered: l.redelivered,
            ...(r.scheduled.get(scheduledKey(type, l.lane)) ?? NO_SCHEDULES),
            oldestWaitingAt: l.oldestAt?.toISOString() ?? null,
            oldestWaitingSeconds: age(l.oldestAt),
            workers: l.pullRequests,
            paused: pause !== undefined,
            ...(pause ? { pause: viewOf(pause)! } : {}),
          };
        });
      const sum = (f: (l: LaneView) => number) => lanes.reduce((n, l) => n + f(l), 0);
      const ages = lanes.map((l) => l.oldestWaitingSeconds).filter((a): a is number => a !== null);
      const whole = current.get(pauseKey(type));
      const activity = r.activity.get(type);
      out.push({
        type,
        paused: whole !== undefined,
        ...(whole ? { pause: viewOf(whole)! } : {}),
        waiting: sum((l) => l.waiting),
        running: sum((l) => l.running),
        delayed: sum((l) => l.delayed),
        retrying: sum((l) => l.retrying),
        repeating: sum((l) => l.repeating),
        oldestWaitingSeconds: ages.length > 0 ? Math.max(...ages) : null,
        workers: lanes.reduce((n, l) => Math.max(n, l.workers), 0),
        lastMinute: activity?.lastMinute ?? ZERO,
        lastHour: activity?.lastHour ?? ZERO,
        deadLetters: { unresolved: r.unresolved.get(type) ?? 0 },
        lanes,
      });
    }
    return { readAt: new Date(r.at).toISOString(), types: out };
  }

  /** Records a pause or resume in the audit trail (EVENTS, then Postgres by the projection). */
  const record = (kind: 'queue.paused' | 'queue.resumed', req: PauseRequest, actor: Actor, at: Date) =>
    deps.events.publish({
      kind,
      jobId: queueJobId(req.type, req.lane),
      type: req.type,
      actor: actor.name,
      at,
      data: { ...(req.lane ? { lane: req.lane } : {}), ...(req.note ? { note: req.note } : {}) },
    });

  const unavailable = (what: string, err: unknown): never => {
    logger.error({ err }, `${what} failed`);
    throw new OperationError('NOT_PUBLISHED', `${what} failed: NATS did not store it; retry`, 1);
  };

  return {
    ...guarded({
      /** The stats of every type (or of `type`), from one reading reused for QUEUE_STATS_CACHE_MS. */
      async stats(query: { type?: string }): Promise<QueueStatsView> {
        if (query.type !== undefined) check({ type: query.type });
        return build(await read(), pauses.current, query.type);
      },
    }),

    /** Which types and lanes are paused now. */
    paused(): PauseMap {
      return pauses.current;
    },

    async pause(req: PauseRequest, actor: Actor): Promise<PauseAnswer> {
      check(req);
      const at = new Date(now());
      const rec: PauseRecord = {
        type: req.type,
        ...(req.lane ? { lane: req.lane } : {}),
        by: actor.name,
        at: at.toISOString(),
        ...(req.note ? { note: req.note } : {}),
      };
      // The pause first: the record of a change that did not happen would be worse than a
      // pause whose record must be written again (asking again pauses again and records it).
      await putPause(deps.js, topology, rec).catch((err: unknown) => unavailable('the pause', err));
      await record('queue.paused', req, actor, at).catch((err: unknown) =>
        unavailable('recording the pause (it is in force)', err),
      );
      logger.info({ type: req.type, lane: req.lane, by: actor.name }, 'queue paused');
      return { type: req.type, ...(req.lane ? { lane: req.lane } : {}), paused: true, pause: viewOf(rec)! };
    },

    async resume(req: PauseRequest, actor: Actor): Promise<PauseAnswer> {
      check(req);
      if (req.lane && pauses.current.has(pauseKey(req.type))) {
        throw new OperationError(
          'TYPE_PAUSED',
          `every lane of ${req.type} is paused: resume the type (without a lane) to run its jobs again`,
        );
      }
      const at = new Date(now());
      await deletePause(deps.js, topology, req.type, req.lane).catch((err: unknown) => unavailable('the resume', err));
      await record('queue.resumed', req, actor, at).catch((err: unknown) =>
        unavailable('recording the resume (it is in force)', err),
      );
      logger.info({ type: req.type, lane: req.lane, by: actor.name }, 'queue resumed');
      return { type: req.type, ...(req.lane ? { lane: req.lane } : {}), paused: false };
    },
  };
}

export type Queues = ReturnType<typeof createQueues>;
