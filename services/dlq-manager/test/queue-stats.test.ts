import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { ensureStreams, provisionJobTypes, publishJob, Topology } from '@redrive/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTestClient, deleteStreams, uniquePrefix } from '@redrive/test-support';
import { readConsumerBacklog, readQueueStats } from '../src/queues/stats.js';

// The queue reader against the shared NATS: what it says is what the worker consumers on JOBS
// say, per type and lane, and the age of the oldest job is read from the stream itself.

const prefix = uniquePrefix('qstats');
const topology = new Topology({ prefix });
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, topology.streamConfigs());
  await provisionJobTypes(jsm, topology, ['alpha', 'beta'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 100 });
  // Not a worker's consumer: left out of the stats.
  await jsm.consumers.add(topology.streams.jobs, {
    durable_name: 'someone-else',
    filter_subject: topology.jobSubject('normal', 'alpha'),
    ack_policy: AckPolicy.Explicit,
  });
});

afterAll(async () => {
  await deleteStreams(nc, prefix);
  await nc.close();
});

const publish = (type: string, priority: 'high' | 'normal' | 'low', n: number) =>
  publishJob(jetstream(nc), {
    subject: topology.jobSubject(priority, type),
    payload: new TextEncoder().encode('{}'),
    jobId: `${type}-${n}`,
    attempt: 0,
  });

describe('readQueueStats', () => {
  it('reads waiting, running and the oldest job per type and lane from the worker consumers', async () => {
    const before = Date.now();
    for (let i = 0; i < 3; i++) await publish('alpha', 'normal', i);
    await publish('beta', 'low', 9);
    // One alpha job delivered and not acked: running.
    const consumer = await jetstream(nc).consumers.get(topology.streams.jobs, 'worker-normal-alpha');
    const running = await consumer.next({ expires: 5_000 });
    expect(running).not.toBeNull();

    const stats = await readQueueStats(jsm, topology);
    expect(stats.map((s) => `${s.type}/${s.lane}`)).toEqual([
      'alpha/high',
      'alpha/low',
      'alpha/normal',
      'beta/high',
      'beta/low',
      'beta/normal',
    ]);
    const alpha = stats.find((s) => s.type === 'alpha' && s.lane === 'normal')!;
    expect(alpha).toMatchObject({ consumer: 'worker-normal-alpha', waiting: 2, running: 1, redelivered: 0 });
    // The oldest unacknowledged job is the first one published (the one running).
    expect(alpha.oldestAt!.getTime()).toBeGreaterThanOrEqual(before - 1_000);
    expect(alpha.oldestAt!.getTime()).toBeLessThanOrEqual(Date.now());
    expect(stats.find((s) => s.type === 'beta' && s.lane === 'low')).toMatchObject({ waiting: 1, running: 0 });
    expect(stats.find((s) => s.type === 'alpha' && s.lane === 'high')).toMatchObject({
      waiting: 0,
      running: 0,
      oldestAt: undefined,
    });

    // Once the running job is acked, the oldest is the next one.
    running!.ack();
    await running!.ackAck().catch(() => undefined);
    const after = (await readQueueStats(jsm, topology)).find((s) => s.type === 'alpha' && s.lane === 'normal')!;
    expect(after).toMatchObject({ waiting: 2, running: 0 });
    expect(after.oldestAt!.getTime()).toBeGreaterThanOrEqual(alpha.oldestAt!.getTime());
  });

  it('reads one consumer’s backlog, as for the audit lag', async () => {
    const backlog = await readConsumerBacklog(jsm, topology.streams.jobs, 'worker-low-beta');
    expect(backlog).toMatchObject({ waiting: 1, running: 0, redelivered: 0 });
    expect(backlog.oldestAt).toBeInstanceOf(Date);
  });
});
