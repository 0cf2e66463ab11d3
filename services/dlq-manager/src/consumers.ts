import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import { DLQ_MANAGER_CONSUMERS, type Topology } from '@redrive/messaging';

const NS_PER_MS = 1_000_000;

/** The durable consumers dlq-manager reads with; replicas share them and split the work. */
export const CONSUMERS = DLQ_MANAGER_CONSUMERS;

/** Stream and configuration of each of dlq-manager's consumers. */
export function dlqConsumerConfigs(
  topology: Topology,
  opts: { ackWaitMs: number; auditBatch: number },
): { stream: string; config: ConsumerConfig }[] {
  const common = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: opts.ackWaitMs * NS_PER_MS,
    // Never give up on a message: a dead letter or an event not yet stored must not be
    // dropped because Postgres was down for a while.
    max_deliver: -1,
  };
  return [
    {
      stream: topology.streams.dlq,
      config: {
        ...common,
        durable_name: CONSUMERS.recorder,
        description: 'dlq-manager: records dead letters in Postgres',
        filter_subject: topology.dlqSubject('>'),
        max_ack_pending: 1_000,
      } as ConsumerConfig,
    },
    {
      stream: topology.streams.advisories,
      config: {
        ...common,
        durable_name: CONSUMERS.advisories,
        description: 'dlq-manager: dead-letters jobs the server gave up on',
        max_ack_pending: 1_000,
      } as ConsumerConfig,
    },
    {
      stream: topology.streams.events,
      config: {
        ...common,
        durable_name: CONSUMERS.audit,
        description: 'dlq-manager: projects lifecycle events into the audit trail',
        filter_subject: topology.eventSubject('>'),
        max_ack_pending: Math.max(1_000, opts.auditBatch * 2),
      } as ConsumerConfig,
    },
  ];
}
