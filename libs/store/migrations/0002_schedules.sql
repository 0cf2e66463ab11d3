-- Up Migration

-- The retry-scheduler's clock: one row per delayed job, long retry, delayed redrive, or
-- repeating job (every n ms, or a cron expression in a time zone). Requests arrive on the
-- SCHEDULE stream and are acked only once their row is committed; due rows are claimed with
-- FOR UPDATE SKIP LOCKED, published to `subject`, and advanced or finished in the same
-- transaction, so any number of scheduler replicas share the work.
CREATE TABLE schedules (
  -- The topology prefix ('' for none): installations that share a database never see each other's rows.
  namespace text NOT NULL,
  id text NOT NULL,
  -- The request's Nats-Msg-Id (or stream:sequence): a redelivered request adds no second row.
  request_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('delay', 'retry', 'redrive', 'repeat', 'cron')),
  -- Where each fire is published: jobs.<priority>.<type> under the prefix.
  subject text NOT NULL,
  -- The job id a one-shot fire carries; a repeat's fire n carries "<job_id>:<n>".
  job_id text NOT NULL,
  -- Attempts the job already made (a retry hand-off); every fire carries it in Redrive-Attempt.
  attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  payload bytea NOT NULL,
  -- Headers published with each fire, as [[name, value], …] (a name may repeat).
  headers jsonb NOT NULL DEFAULT '[]'::jsonb,
  every_ms bigint CHECK (every_ms > 0),
  cron text,
  tz text,
  fire_limit integer CHECK (fire_limit > 0),
  -- The first fire's due time, and the last instant a repeat may fire at.
  starts_at timestamptz NOT NULL,
  ends_at timestamptz,
  missed text NOT NULL DEFAULT 'once' CHECK (missed IN ('once', 'all', 'skip')),
  -- Null once the schedule is finished.
  next_due_at timestamptz,
  fire_count integer NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'cancelled')),
  cancel_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_fired_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (namespace, id),
  UNIQUE (namespace, request_id),
  CHECK ((status = 'active') = (next_due_at IS NOT NULL)),
  CHECK (kind <> 'repeat' OR (every_ms IS NOT NULL AND cron IS NULL)),
  CHECK (kind <> 'cron' OR (cron IS NOT NULL AND every_ms IS NULL))
);

-- What the firing loop scans: the earliest due active rows.
CREATE INDEX schedules_due_idx ON schedules (namespace, next_due_at) WHERE status = 'active';
-- Listing in creation order, and removing finished rows past their retention.
CREATE INDEX schedules_created_idx ON schedules (namespace, created_at, id);
CREATE INDEX schedules_finished_idx ON schedules (namespace, finished_at) WHERE status <> 'active';

COMMENT ON TABLE schedules IS 'Redrive retry-scheduler: delayed, retried, redriven and repeating jobs and when they fire next';
