import type { JetStreamClient } from '@nats-io/jetstream';
import { createUuidV7 } from './ids.js';
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

/** An event to publish; `id` is for an event that must keep its id when published again. */
export type EventInput = Omit<LifecycleEvent, 'id' | 'at'> & { at?: Date; id?: string };

/**
 * The id of a job's `job.dead_lettered` event, derived from the job and where it was in JOBS:
 * the worker and dlq-manager both write it, and the audit trail keeps it once. The job id is
 * part of it because a JOBS stream that is recreated counts its sequences from 1 again.
 */
export function deadLetteredEventId(jobsStream: string, seq: number, jobId: string): string {
  return `dlq:${jobsStream}:${seq}:${jobId}`;
}

interface Pending {
  event: LifecycleEvent;
  resolve: (e: LifecycleEvent) => void;
  reject: (err: unknown) => void;
}

/**
 * Publishes lifecycle events and resolves when JetStream has stored them. Events of one kind
 * are batched naturally: the first goes out at once, and those that arrive while its PubAck
 * is awaited go out together as one message whose body is a JSON array (a single event is a
 * JSON object), so a busy worker stores one message for many jobs instead of one each.
 * Every event keeps its unique id, and a message id makes a retried publish a no-op.
 */
export function createEventPublisher(js: JetStreamClient, topology: Topology, opts: { maxBatch?: number } = {}) {
  const encoder = new TextEncoder();
  const maxBatch = opts.maxBatch ?? 256;
  const queues = new Map<string, Pending[]>();
  const busy = new Set<string>();
  const newId = createUuidV7();

  async function flush(subject: string): Promise<void> {
    const queue = queues.get(subject);
    if (busy.has(subject) || !queue || queue.length === 0) return;
    const batch = queue.splice(0, maxBatch);
    busy.add(subject);
    try {
      const body = batch.length === 1 ? batch[0]!.event : batch.map((p) => p.event);
      // The message id names this message, never only its first event: an event published
      // again with its id (a worker sending a success once more) must not make JetStream drop
      // a batch of other events as a duplicate.
      const msgID = batch.length === 1 ? batch[0]!.event.id : `batch:${newId()}`;
      await js.publish(subject, encoder.encode(JSON.stringify(body)), { msgID, timeout: 5_000 });
      for (const p of batch) p.resolve(p.event);
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      busy.delete(subject);
      void flush(subject);
    }
  }

  return {
    publish(input: EventInput): Promise<LifecycleEvent> {
      const { at, id, ...rest } = input;
      const event: LifecycleEvent = { id: id ?? newId(), at: (at ?? new Date()).toISOString(), ...rest };
      const subject = topology.eventSubject(event.kind);
      return new Promise<LifecycleEvent>((resolve, reject) => {
        let queue = queues.get(subject);
        if (!queue) queues.set(subject, (queue = []));
        queue.push({ event, resolve, reject });
        void flush(subject);
      });
    },
  };
}

/** The events in one EVENTS message: a single event object, or an array of them. */
export function decodeEvents(data: Uint8Array): LifecycleEvent[] {
  const parsed = JSON.parse(new TextDecoder().decode(data)) as LifecycleEvent | LifecycleEvent[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

export type EventPublisher = ReturnType<typeof createEventPublisher>;
