import type { Redis } from 'ioredis';
import type { Degradation } from './degradation.js';

/** What Redis knows of a job when one of its runs starts. */
export interface RunStart {
  /** An earlier run succeeded (its ack was lost): this one must not run. */
  completed: boolean;
  /** Runs of the job that started and never ended, this one included: the others died with their worker. */
  unfinished: number;
  /** Of those, runs made as a suspect, apart from the worker's other suspects (`suspect`), that died too. */
  suspectDeaths: number;
}

/**
 * The runs of a job, in one round trip at each end: a run is counted when it starts and the
 * count is cleared when it ends, whatever the outcome, so what is left counts runs cut short by
 * a dying worker. That tells a job that kills its worker (a poison job) from one that was only
 * unlucky. A run that succeeded also leaves the job's completion marker (`done`), so a
 * redelivery after a lost ack is not run again. A run made as a suspect, apart from the other
 * suspects on its worker, is counted once more (`suspect`): a death then says more about the
 * job itself than one beside a poison job. Fails open: with Redis down nothing is known.
 */
export interface Runs {
  start(key: string, ttlMs: number): Promise<RunStart>;
  /** The run ended; with `completedTtlMs` it succeeded and the job is marked completed for that long. Never throws. */
  end(key: string, completedTtlMs?: number): Promise<void>;
  /** This run is a suspect's, made apart from the worker's other suspects. Never throws. */
  suspect(key: string, ttlMs: number): Promise<void>;
}

export function createRuns(redis: Redis, keyPrefix: string, degradation: Degradation): Runs {
  const runsKey = (key: string) => `${keyPrefix}:runs:${key}`;
  const doneKey = (key: string) => `${keyPrefix}:done:${key}`;
  const suspectKey = (key: string) => `${keyPrefix}:suspect:${key}`;
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
            .get(suspectKey(key))
            .exec();
          const [done, runs, , suspects] = (replies ?? []).map(([err, value]) => {
            if (err) throw err;
            return Number(value ?? 0);
          });
          return { completed: done === 1, unfinished: runs ?? 0, suspectDeaths: suspects ?? 0 };
        },
        { completed: false, unfinished: 0, suspectDeaths: 0 },
      ),
    end: (key, completedTtlMs) =>
      degradation.run(
        'runs',
        'end',
        async () => {
          const tx = redis.multi().del(runsKey(key), suspectKey(key));
          if (completedTtlMs !== undefined && completedTtlMs >= 1)
            tx.set(doneKey(key), '1', 'PX', Math.ceil(completedTtlMs));
          await tx.exec();
        },
        undefined,
      ),
    suspect: (key, ttlMs) =>
      degradation.run(
        'runs',
        'suspect',
        async () => {
          await redis.multi().incr(suspectKey(key)).pexpire(suspectKey(key), Math.ceil(ttlMs)).exec();
        },
        undefined,
      ),
  };
}
