import { rethrowUnavailable } from './errors.js';
import type { Pool } from './pool.js';

/** A checkpoint lookup: `found: false` means the step never completed; a saved null is `found: true`. */
export type StepLookup = { found: true; value: unknown } | { found: false };

/** Results of completed steps of multi-step jobs, so a retried job resumes instead of repeating work. */
export interface StepStore {
  /** The result recorded for this step of this job, if the step completed. */
  get(jobId: string, step: string): Promise<StepLookup>;
  /**
   * Records a step's result (as JSON; undefined becomes null). The first result recorded wins:
   * a duplicate run racing on the same step keeps the earlier result and does not fail.
   */
  save(jobId: string, step: string, value: unknown): Promise<void>;
  /** Forgets every step of the job; returns how many checkpoints were removed. */
  clear(jobId: string): Promise<number>;
}

function toJson(value: unknown): string {
  // Serialised here rather than by pg: pg would turn a JS array into a Postgres array literal,
  // which is not JSON.
  const json = JSON.stringify(value === undefined ? null : value);
  if (json === undefined) throw new TypeError(`a step result must be JSON-serialisable, got ${typeof value}`);
  return json;
}

/** A step store on the `job_steps` table (created by migration 0001). */
export function createStepStore(pool: Pool): StepStore {
  return {
    async get(jobId, step) {
      try {
        const { rows } = await pool.query<{ result: unknown }>(
          'SELECT result FROM job_steps WHERE job_id = $1 AND step = $2',
          [jobId, step],
        );
        const row = rows[0];
        return row ? { found: true, value: row.result } : { found: false };
      } catch (err) {
        return rethrowUnavailable(err, 'reading a step checkpoint');
      }
    },

    async save(jobId, step, value) {
      const json = toJson(value);
      try {
        await pool.query(
          'INSERT INTO job_steps (job_id, step, result) VALUES ($1, $2, $3::jsonb) ON CONFLICT (job_id, step) DO NOTHING',
          [jobId, step, json],
        );
      } catch (err) {
        rethrowUnavailable(err, 'saving a step checkpoint');
      }
    },

    async clear(jobId) {
      try {
        const result = await pool.query('DELETE FROM job_steps WHERE job_id = $1', [jobId]);
        return result.rowCount ?? 0;
      } catch (err) {
        return rethrowUnavailable(err, 'clearing step checkpoints');
      }
    },
  };
}
