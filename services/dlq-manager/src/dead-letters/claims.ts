import type { ConsumerInfo } from '@nats-io/jetstream';
import { subjectMatches, type DeadLetterReason } from '@redrive/messaging';

/** A JetStream advisory about a message the server or a client gave up on. */
export interface Advisory {
  reason: Extract<DeadLetterReason, 'max_deliveries' | 'terminated'>;
  stream: string;
  consumer: string;
  streamSeq: number;
  deliveries: number;
}

const ADVISORY_TYPES: Record<string, Advisory['reason']> = {
  'io.nats.jetstream.advisory.v1.max_deliver': 'max_deliveries',
  'io.nats.jetstream.advisory.v1.terminated': 'terminated',
};

/** Reads a MAX_DELIVERIES or MSG_TERMINATED advisory; undefined for anything else. */
export function parseAdvisory(data: Uint8Array): Advisory | undefined {
  let a: Record<string, unknown>;
  try {
    a = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const reason = typeof a?.type === 'string' ? ADVISORY_TYPES[a.type] : undefined;
  const seq = a?.stream_seq;
  if (!reason || typeof a.stream !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    return undefined;
  return {
    reason,
    stream: a.stream,
    consumer: typeof a.consumer === 'string' ? a.consumer : '',
    streamSeq: seq,
    deliveries: typeof a.deliveries === 'number' ? a.deliveries : 0,
  };
}

/** What an advisory's claim is checked against: the state of the consumer it names. */
export interface ConsumerState {
  delivered: { stream_seq: number };
  ack_floor: { stream_seq: number };
  num_ack_pending: number;
  config: Pick<ConsumerInfo['config'], 'max_deliver' | 'filter_subject' | 'filter_subjects'>;
}

/**
 * What the named consumer says of an advisory's claim. `refuted`: it cannot be true (no such
 * consumer, a message that consumer does not deliver or has not delivered yet, fewer deliveries
 * than its max_deliver), and never will be. `undecided`: the message may still be awaiting its
 * ack. `confirmed`: the consumer delivered the message and no longer awaits an ack for it.
 */
export type ClaimVerdict = { verdict: 'confirmed' } | { verdict: 'refuted' | 'undecided'; why: string };

/**
 * Checks an advisory against the consumer it names (pure). Advisories are JetStream's pointers,
 * and anyone who can publish on `$JS.EVENT.ADVISORY.>` could forge one (NATS permissions
 * forbid every client that, docs/security.md): acted on blindly, a forged MAX_DELIVERIES would
 * copy a pending job to the DLQ and delete it from JOBS. So nothing is done on a claim the
 * consumer's own state does not bear out:
 *
 * - the consumer exists, and its filter covers the message's subject;
 * - it has delivered the message (its delivered stream sequence has passed it);
 * - for MAX_DELIVERIES, it has a max_deliver and the advisory counts at least that many;
 * - it is no longer waiting for the message's ack: its ack floor has passed it, or nothing at
 *   all awaits an ack. JetStream says no more per message: a server gives up on a message
 *   by dropping it from the consumer's pending set (2.12 also moves the ack floor past it);
 *   on older servers a consumer that is never idle keeps its floor below such a message, and
 *   the claim stays undecided (and is asked again) until the consumer has a quiet moment.
 */
export function judgeClaim(
  adv: Advisory,
  consumer: ConsumerState | undefined,
  originalSubject: string | undefined,
): ClaimVerdict {
  const name = `consumer ${adv.consumer || '(none)'} of ${adv.stream}`;
  if (!consumer) return { verdict: 'refuted', why: `${name} does not exist` };
  const filters = consumer.config.filter_subjects?.length
    ? consumer.config.filter_subjects
    : consumer.config.filter_subject
      ? [consumer.config.filter_subject]
      : [];
  if (originalSubject !== undefined && filters.length > 0 && !filters.some((f) => subjectMatches(f, originalSubject)))
    return {
      verdict: 'refuted',
      why: `${name} does not deliver ${originalSubject} (it filters ${filters.join(', ')})`,
    };
  if (consumer.delivered.stream_seq < adv.streamSeq)
    return {
      verdict: 'refuted',
      why: `${name} has not delivered sequence ${adv.streamSeq} (it has delivered up to ${consumer.delivered.stream_seq})`,
    };
  if (adv.reason === 'max_deliveries') {
    const max = consumer.config.max_deliver ?? -1;
    if (max <= 0) return { verdict: 'refuted', why: `${name} has no max_deliver, so it never gives up on a message` };
    if (adv.deliveries < max)
      return {
        verdict: 'refuted',
        why: `the advisory counts ${adv.deliveries} deliveries; ${name} gives up after ${max}`,
      };
  }
  if (consumer.ack_floor.stream_seq < adv.streamSeq && consumer.num_ack_pending > 0)
    return {
      verdict: 'undecided',
      why:
        `${name} may still await the ack of sequence ${adv.streamSeq} ` +
        `(ack floor ${consumer.ack_floor.stream_seq}, ${consumer.num_ack_pending} awaiting acks)`,
    };
  return { verdict: 'confirmed' };
}
