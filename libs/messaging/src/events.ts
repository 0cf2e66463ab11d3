import type { JetStreamClient } from '@nats-io/jetstream';
import { v7 as uuidv7 } from 'uuid';
import type { Topology } from './topology.js';

/** The lifecycle events every service publishes on `events.<kind>` for the audit trail. */
export const EVENT_KINDS = [
  'job.accepted',
  'attempt.started',
  'attempt.succeeded',
  'attempt.failed',
  'retry.scheduled',
  'job.dead_lettered',
  'job.skipped',
  'job.log',
  'job.progress',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** One lifecycle event; `id` is unique, so a replay is recognised as the same event. */
export interface LifecycleEvent {
  id: string;
  kind: EventKind;
  jobId: string;
  type: string;
  at: string;
  attempt?: number;
  traceId?: string;
  errorClass?: string;
  error?: string;
  delayMs?: number;
  durationMs?: number;
  reason?: string;
  dueAt?: string;
  data?: unknown;
}

export type EventInput = Omit<LifecycleEvent, 'id' | 'at'> & { at?: Date };

/**
 * Publishes lifecycle events and resolves when JetStream has stored them. The event id is
 * the message id, so a publish retried after a lost PubAck is stored once.
 */
export function createEventPublisher(js: JetStreamClient, topology: Topology) {
  const encoder = new TextEncoder();
  return {
    async publish(input: EventInput): Promise<LifecycleEvent> {
      const { at, ...rest } = input;
      const event: LifecycleEvent = { id: uuidv7(), at: (at ?? new Date()).toISOString(), ...rest };
      await js.publish(topology.eventSubject(event.kind), encoder.encode(JSON.stringify(event)), {
        msgID: event.id,
        timeout: 5_000,
      });
      return event;
    },
  };
}

export type EventPublisher = ReturnType<typeof createEventPublisher>;
