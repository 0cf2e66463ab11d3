-- Up Migration

-- Long admin operations (a bulk redrive) run in the background of the dlq-manager that
-- accepted them; their progress is written here as it goes, so it can be read (and cancelled)
-- through any replica and survives a restart. A running operation whose heartbeat stops (its
-- dlq-manager died or stopped) is marked `interrupted` by the next dlq-manager that looks.
CREATE TABLE admin_operations (
  id text PRIMARY KEY,
  kind text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'failed', 'interrupted')),
  -- Who asked (a token's name or "nats:<actor>").
  actor text NOT NULL,
  -- The request as accepted (filter, delay, at, note, steps, limit, perSecond).
  request jsonb NOT NULL,
  -- Entries the filter matched when the operation started.
  matched integer NOT NULL,
  -- Of those, the ones this operation works on (the first `limit` in id order, or all).
  selected integer NOT NULL,
  -- The highest id selected: entries recorded later are not part of it.
  upto_id bigint NOT NULL,
  redriven integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  -- The first failures, [{id, code, message}] (every failure is counted in `failed`).
  errors jsonb NOT NULL DEFAULT '[]',
  -- The last entry processed: the next one has a larger id.
  last_id bigint NOT NULL DEFAULT 0,
  cancel_requested_by text,
  -- Why it failed or was interrupted.
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The heartbeat: written after every entry and every few seconds while it runs.
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

CREATE INDEX admin_operations_running ON admin_operations (updated_at) WHERE status = 'running';

COMMENT ON TABLE admin_operations IS 'Redrive dlq-manager: tracked background operations (bulk redrive), with progress';
