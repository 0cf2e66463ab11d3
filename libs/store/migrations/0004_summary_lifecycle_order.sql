-- Up Migration

-- A job's summary keeps the status of the event that is latest in the job's lifecycle, not in
-- time alone: its life (0.0 for the first, `<dead letter id>.<n>` after a redrive), then its
-- stage (0 accepted or redriven, 1 running, retrying or scheduled, 2 succeeded, dead-lettered or
-- cancelled), then its time. Events reach the audit trail in any order: intake's job.accepted
-- can be stamped after the worker's success, and must not turn a finished job back to accepted.
ALTER TABLE job_summaries
  ADD COLUMN status_life_a bigint NOT NULL DEFAULT 0,
  ADD COLUMN status_life_b integer NOT NULL DEFAULT 0,
  ADD COLUMN status_stage smallint NOT NULL DEFAULT -1;

-- Summaries written before this migration: their stage from their status (their life is unknown
-- and stays 0.0, which a later life's events still outrank).
UPDATE job_summaries SET status_stage = CASE
  WHEN status IN ('accepted', 'redriven') THEN 0
  WHEN status IN ('succeeded', 'dead_lettered', 'cancelled') THEN 2
  ELSE 1 END;

COMMENT ON COLUMN job_summaries.status IS 'accepted, running, retrying, scheduled, succeeded, dead_lettered, redriven, cancelled';
