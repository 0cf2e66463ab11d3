import { v7 as uuidv7 } from 'uuid';
import type { ADMIN_KINDS, AuditRow } from './store.js';

/** Who asks for a change: a token's name over HTTP, `nats:<name>` over NATS, `retention` for the schedule. */
export interface Actor {
  name: string;
}

/** The audit row of a change an actor made to a dead letter (written in the change's transaction). */
export function changeRow(
  kind: (typeof ADMIN_KINDS)[number],
  actor: Actor,
  dl: { jobId: string; type: string },
  at: Date,
  extra: object,
): AuditRow {
  return {
    id: uuidv7(),
    jobId: dl.jobId,
    type: dl.type,
    kind,
    attempt: null,
    errorClass: null,
    error: null,
    delayMs: null,
    durationMs: null,
    traceId: null,
    actor: actor.name,
    at,
    extra: extra as Record<string, unknown>,
  };
}
