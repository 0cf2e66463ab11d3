import type { JetStreamClient } from '@nats-io/jetstream';
import { createUuidV7 } from './ids.js';
import { redactUrls } from './redact.js';
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
  'job.cancelled',
  // An operator paused or resumed a job type or lane (dlq-manager); the job id is
  // `queue:<type>` or `queue:<type>.<lane>` (queueJobId), the actor who asked is in `actor`.
  'queue.paused',
  'queue.resumed',
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
  /** The job's life (`Redrive-Life`), absent for the first: the audit trail orders lives by it. */
  life?: string;
  data?: unknown;
  /** Who made an operator's change (queue.paused, queue.resumed): a token's name, or `nats:<actor>`. */
  actor?: string;
}

/** The job id a queue's pause and resume events are recorded under, for its timeline. */
export function queueJobId(type: string, lane?: string): string {
  return lane ? `queue:${type}.${lane}` : `queue:${type}`;
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
  /** The event as JSON, and its size in bytes, measured once. */
  json: string;
  bytes: number;
  resolve: (e: LifecycleEvent) => void;
  reject: (err: unknown) => void;
}

/** nats-server's default max_payload; a publisher told nothing else stays below it. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room left for the message's headers (message id, trace context) and the array's brackets. */
const ENVELOPE_BYTES = 4 * 1024;
/** An event's error text is cut to this many characters, like a dead letter's. */
const MAX_ERROR_CHARS = 1_000;

/**
 * The JSON of one event, made to fit in `maxBytes`: an error text keeps only the origins of its
 * URLs and is cut to one line of at most 1,000 characters, and data too large to store (a handler's huge log line or progress value)
 * is replaced by a note of its size. An event that cannot be stored would hold up the job it
 * belongs to forever; one that is cut still says what happened.
 */
export function encodeEvent(event: LifecycleEvent, maxBytes: number): string {
  return encode(event, maxBytes).json;
}

function encode(event: LifecycleEvent, maxBytes: number): { json: string; bytes: number } {
  // Every URL in the error text is cut to its origin: the audit trail keeps it for 30 days and
  // shows it to every viewer, and a webhook's path is its secret (redactUrls).
  if (event.error !== undefined) event.error = redactUrls(event.error);
  if (event.error !== undefined && event.error.length > MAX_ERROR_CHARS)
    event.error = Array.from(event.error).slice(0, MAX_ERROR_CHARS).join('');
  let json = JSON.stringify(event);
  let bytes = Buffer.byteLength(json);
  if (bytes > maxBytes && event.data !== undefined) {
    event.data = { truncated: true, bytes: Buffer.byteLength(JSON.stringify(event.data)) };
    json = JSON.stringify(event);
    bytes = Buffer.byteLength(json);
  }
  return { json, bytes };
}

/**
 * Publishes lifecycle events and resolves when JetStream has stored them. Events of one kind
 * are batched naturally: the first goes out at once, and those that arrive while its PubAck
 * is awaited go out together as one message whose body is a JSON array (a single event is a
 * JSON object), so a busy worker stores one message for many jobs instead of one each. A batch
 * holds at most `maxBatch` events and stays under `maxPayload` bytes (the server's max_payload:
 * a larger message would be refused, and every event in it lost). Every event keeps its unique
 * id, and a message id makes a retried publish a no-op.
 */
export function createEventPublisher(
  js: JetStreamClient,
  topology: Topology,
  opts: { maxBatch?: number; maxPayload?: number } = {},
) {
  const maxBatch = opts.maxBatch ?? 256;
  const maxBytes = Math.max(1024, (opts.maxPayload ?? DEFAULT_MAX_PAYLOAD) - ENVELOPE_BYTES);
  const queues = new Map<string, Pending[]>();
  const busy = new Set<string>();
  const newId = createUuidV7();

  /** Takes the next batch off the queue: at least one event, then as many as fit. */
  function take(queue: Pending[]): Pending[] {
    let bytes = queue[0]!.bytes;
    let n = 1;
    while (n < queue.length && n < maxBatch) {
      const next = queue[n]!.bytes + 1;
      if (bytes + next > maxBytes) break;
      bytes += next;
      n++;
    }
    return queue.splice(0, n);
  }

  async function flush(subject: string): Promise<void> {
    const queue = queues.get(subject);
    if (busy.has(subject) || !queue || queue.length === 0) return;
    const batch = take(queue);
    busy.add(subject);
    try {
      const body = batch.length === 1 ? batch[0]!.json : `[${batch.map((p) => p.json).join(',')}]`;
      // The message id names this message, never only its first event: an event published
      // again with its id (a worker sending a success once more) must not make JetStream drop
      // a batch of other events as a duplicate.
      const msgID = batch.length === 1 ? batch[0]!.event.id : `batch:${newId()}`;
      await js.publish(subject, body, { msgID, timeout: 5_000 });
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
      const { json, bytes } = encode(event, maxBytes);
      const subject = topology.eventSubject(event.kind);
      return new Promise<LifecycleEvent>((resolve, reject) => {
        let queue = queues.get(subject);
        if (!queue) queues.set(subject, (queue = []));
        queue.push({ event, json, bytes, resolve, reject });
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
