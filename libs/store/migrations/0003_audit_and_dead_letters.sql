-- Up Migration

-- The audit trail: one append-only row per lifecycle event (from the EVENTS stream) and per
-- change an operator made (written by dlq-manager in the same transaction as the change).
-- `id` is the event's own id, so a replayed event is recognised and stored once.
CREATE TABLE audit_events (
  id text PRIMARY KEY,
  job_id text NOT NULL,
  type text,
  kind text NOT NULL,
  attempt integer,
  error_class text,
  error text,
  delay_ms bigint,
  duration_ms bigint,
  trace_id text,
  -- Who made an operator's change (a token's name, "nats:<actor>", "retention"); null for events.
  actor text,
  at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  -- Everything else the event carried: reason, dueAt, data, a dead letter's id, a note …
  extra jsonb
);

-- A job's timeline, in order.
CREATE INDEX audit_events_job_idx ON audit_events (job_id, at, id);

COMMENT ON TABLE audit_events IS 'Redrive audit trail: one append-only row per lifecycle event or operator change';

-- Append-only: rows are never changed or removed by the application. (Pruning the trail is an
-- operator's decision: ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only.)
CREATE FUNCTION audit_events_append_only() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_append_only
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- One row per job, kept up to date by the same transactions that append its audit events.
CREATE TABLE job_summaries (
  job_id text PRIMARY KEY,
  type text,
  -- accepted, running, retrying, scheduled, succeeded, dead_lettered, redriven
  status text NOT NULL,
  -- The time of the event that set `status`: an event older than it does not change it.
  status_at timestamptz NOT NULL,
  -- Runs that ended (attempt.succeeded or attempt.failed), across every life of the job.
  attempts integer NOT NULL DEFAULT 0,
  -- 1, plus one per redrive.
  lives integer NOT NULL DEFAULT 1,
  first_seen_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  last_error_class text,
  last_error text,
  last_error_at timestamptz
);

CREATE INDEX job_summaries_status_idx ON job_summaries (status, last_seen_at);

COMMENT ON TABLE job_summaries IS 'Redrive per-job summary, derived from audit_events';

-- Dead letters: every job that reached the DLQ, whichever path it took. One row per death:
-- the key is the original message (JOBS stream and sequence), so a replayed DLQ message or
-- advisory never adds a second row, and a redriven job that dies again gets a new one.
CREATE TABLE dead_letters (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id text NOT NULL,
  type text NOT NULL,
  original_stream text NOT NULL,
  original_subject text NOT NULL,
  original_seq bigint NOT NULL,
  dlq_stream text NOT NULL,
  dlq_seq bigint NOT NULL,
  reason text NOT NULL CHECK (reason IN ('non_retryable', 'retries_exhausted', 'max_deliveries', 'terminated')),
  error_class text,
  error text,
  attempts integer NOT NULL,
  -- The job's body as it was published; null when the original was gone before it was copied.
  payload bytea,
  payload_available boolean NOT NULL,
  headers jsonb NOT NULL,
  trace_id text,
  -- When the dead letter reached the DLQ stream.
  created_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  resolved_by text,
  resolution_note text,
  redrive_count integer NOT NULL DEFAULT 0,
  last_redriven_at timestamptz,
  last_redriven_by text,
  CONSTRAINT dead_letters_original_key UNIQUE (original_stream, original_seq)
);

-- Listing newest first (the cursor is the id) and by time range.
CREATE INDEX dead_letters_created_idx ON dead_letters (created_at, id);
CREATE INDEX dead_letters_type_idx ON dead_letters (type, id);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, id);
CREATE INDEX dead_letters_class_idx ON dead_letters (error_class, id);
CREATE INDEX dead_letters_job_idx ON dead_letters (job_id);
-- The operator's queue (unresolved count, oldest unresolved) and the retention cleanup.
CREATE INDEX dead_letters_unresolved_idx ON dead_letters (created_at) WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_resolved_idx ON dead_letters (resolved_at) WHERE resolved_at IS NOT NULL;

COMMENT ON TABLE dead_letters IS 'Redrive dead letters, one row per job death, with resolution and redrives';
