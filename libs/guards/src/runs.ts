import type { Redis } from 'ioredis';
import type { Degradation } from './degradation.js';

/** What Redis knows of a job when one of its runs starts. */
export interface RunStart {
  /** An earlier run succeeded (its ack was lost): this one must not run. */
  completed: boolean;
  /** Runs of the job that started and never ended, this one included: the others died with their worker. */
  unfinished: number;
}

/**
 * The runs of a job, in one round trip at each end: a run is counted when it starts and the
 * count is cleared when it ends, whatever the outcome, so what is left counts runs cut short by
 * a dying worker. That tells a job that kills its worker (a poison job) from one that was only
 * unlucky. A run that succeeded also leaves the job's completion marker (`done`), so a
 * redelivery after a lost ack is not run again. Fails open: with Redis down nothing is known.
 */
export interface Runs {
  start(key: string, ttlMs: number): Promise<RunStart>;
  /** The run ended; with `completedTtlMs` it succeeded and the job is marked completed for that long. Never throws. */
  end(key: string, completedTtlMs?: number): Promise<void>;
  /** Takes back the count of a run that did not happen after all (it was put off). Never throws. */
  undo(key: string): Promise<void>;
}

export function createRuns(redis: Redis, keyPrefix: string, degradation: Degradation): Runs {
  const runsKey = (key: string) => `${keyPrefix}:runs:${key}`;
  const doneKey = (key: string) => `${keyPrefix}:done:${key}`;
  return {
    start: (key, ttlMs) =>
      degradation.run(
        'runs',
        'start',
        async () => {
          const replies = await redis
            .multi()
            .exists(doneKey(key))
            .incr(runsKey(key))
            .pexpire(runsKey(key), Math.ceil(ttlMs))
            .exec();
          const [done, runs] = (replies ?? []).map(([err, value]) => {
            if (err) throw err;
            return Number(value);
          });
          return { completed: done === 1, unfinished: runs ?? 0 };
        },
        { completed: false, unfinished: 0 },
      ),
    end: (key, completedTtlMs) =>
      degradation.run(
        'runs',
        'end',
        async () => {
          const tx = redis.multi().del(runsKey(key));
          if (completedTtlMs !== undefined && completedTtlMs >= 1)
            tx.set(doneKey(key), '1', 'PX', Math.ceil(completedTtlMs));
          await tx.exec();
        },
        undefined,
      ),
    undo: (key) =>
      degradation.run(
        'runs',
        'undo',
        async () => {
          await redis.decr(runsKey(key));
        },
        undefined,
      ),
  };
}
