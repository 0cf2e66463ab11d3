-- Up Migration

-- Jobs finished per type in 10-second buckets, kept up to date by the audit projection in the
-- statement that appends the events (only rows really inserted are counted, so a replayed event
-- is never counted twice). The queue stats read the last hour of it (360 buckets per type)
-- instead of scanning audit_events; buckets older than two days are removed by the cleanup.
CREATE TABLE audit_activity (
  bucket timestamptz NOT NULL,
  type text NOT NULL,
  succeeded integer NOT NULL DEFAULT 0,
  -- attempt.failed: runs that failed (each retried or dead-lettered afterwards).
  failed integer NOT NULL DEFAULT 0,
  dead_lettered integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, type)
);

COMMENT ON TABLE audit_activity IS 'Redrive finished attempts per job type in 10 s buckets, derived from audit_events';

-- Job lookup: the jobs of one type by their latest activity, and every job by it (paged by
-- (last_seen_at, job_id)); job_summaries_status_idx serves a status.
CREATE INDEX job_summaries_type_seen_idx ON job_summaries (type, last_seen_at, job_id);
CREATE INDEX job_summaries_seen_idx ON job_summaries (last_seen_at, job_id);

-- A job's page names the schedule it came from (a delay, repeat or cron) and its hand-offs.
CREATE INDEX schedules_job_idx ON schedules (namespace, job_id);
