-- Up Migration

-- Checkpoints of multi-step jobs. A step's result is written once and never overwritten, so a
-- retried (or concurrently duplicated) run resumes after the last completed step with the
-- result the first run recorded.
CREATE TABLE job_steps (
  job_id text NOT NULL,
  step text NOT NULL,
  result jsonb,
  completed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, step)
);

COMMENT ON TABLE job_steps IS 'Redrive step checkpoints: one row per completed step of a job';
