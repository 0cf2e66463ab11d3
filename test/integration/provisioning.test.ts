import { jetstream, jetstreamManager, RetentionPolicy, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsumer, ensureStream, ensureStreams, Topology, TopologyConflictError } from '@redrive/messaging';
import { connectTestClient, deleteStreams, uniquePrefix } from '@redrive/test-support';

let nc: NatsConnection;
let jsm: JetStreamManager;
const prefixes: string[] = [];

function topology(over: ConstructorParameters<typeof Topology>[0] = {}): Topology {
  const prefix = uniquePrefix('prov');
  prefixes.push(prefix);
  return new Topology({ prefix, ...over });
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  for (const p of prefixes) await deleteStreams(nc, p);
  await nc.close();
});

describe('stream and consumer provisioning', () => {
  it('creates every stream once and changes nothing when run again', async () => {
    const topo = topology();
    const first = await ensureStreams(jsm, topo.streamConfigs());
    expect(first.map((r) => [r.name, r.action])).toEqual(
      ['JOBS', 'DLQ', 'ADVISORIES', 'EVENTS', 'SCHEDULE', 'COMPLETIONS'].map((n) => [
        `${topo.options.prefix}_${n}`,
        'created',
      ]),
    );
    const created = await Promise.all(first.map(async (r) => (await jsm.streams.info(r.name)).created));
    const second = await ensureStreams(jsm, topo.streamConfigs());
    expect(second.every((r) => r.action === 'unchanged')).toBe(true);
    const after = await Promise.all(first.map(async (r) => (await jsm.streams.info(r.name)).created));
    expect(after).toEqual(created);

    const consumers = topo.workerConsumerConfigs(['mail'], { ackWaitMs: 30_000, maxDeliver: 7, maxAckPending: 50 });
    for (const c of consumers) expect((await ensureConsumer(jsm, topo.streams.jobs, c)).action).toBe('created');
    for (const c of consumers) expect((await ensureConsumer(jsm, topo.streams.jobs, c)).action).toBe('unchanged');
  });

  it('updates a stream created by an older configuration in place, keeping its messages', async () => {
    const old = topology({ jobs: { maxAgeMs: 0, maxBytes: -1, maxMsgs: -1, duplicateWindowMs: 120_000 } });
    const [jobsOld] = old.streamConfigs();
    await ensureStream(jsm, jobsOld!);
    // A consumer so that the interest-retention stream keeps what is published.
    await ensureConsumer(
      jsm,
      old.streams.jobs,
      old.workerConsumerConfigs(['mail'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 10 })[0]!,
    );
    const js = jetstream(nc);
    await js.publish(old.jobSubject('high', 'mail'), '{"keep":true}');
    const before = await jsm.streams.info(old.streams.jobs);

    const newer = new Topology({
      ...old.options,
      jobs: { maxAgeMs: 0, maxBytes: 512 * 1024 * 1024, maxMsgs: 100_000, duplicateWindowMs: 600_000 },
    });
    const result = await ensureStream(jsm, newer.streamConfigs()[0]!);
    expect(result.action).toBe('updated');
    expect(result.changes.join('\n')).toMatch(/max_bytes/);
    expect(result.changes.join('\n')).toMatch(/duplicate_window/);

    const after = await jsm.streams.info(old.streams.jobs);
    expect(after.created).toBe(before.created);
    expect(after.state.messages).toBe(1);
    expect(after.config.max_bytes).toBe(512 * 1024 * 1024);
    expect(after.config.duplicate_window).toBe(600_000 * 1_000_000);
    const msg = await jsm.streams.getMessage(old.streams.jobs, { seq: before.state.last_seq });
    expect(new TextDecoder().decode(msg!.data)).toBe('{"keep":true}');
    expect((await ensureStream(jsm, newer.streamConfigs()[0]!)).action).toBe('unchanged');
  });

  it('refuses to change what JetStream cannot change in place, naming the field', async () => {
    const topo = topology();
    const jobs = topo.streamConfigs()[0]!;
    await ensureStream(jsm, { ...jobs, retention: RetentionPolicy.Limits });
    const err = await ensureStream(jsm, jobs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TopologyConflictError);
    expect((err as TopologyConflictError).field).toBe('retention');
    expect((await jsm.streams.info(jobs.name)).config.retention).toBe(RetentionPolicy.Limits);
  });

  it('updates a consumer whose ack wait or max deliveries changed', async () => {
    const topo = topology();
    await ensureStreams(jsm, topo.streamConfigs());
    const [c1] = topo.workerConsumerConfigs(['mail'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 10 });
    await ensureConsumer(jsm, topo.streams.jobs, c1!);
    const [c2] = topo.workerConsumerConfigs(['mail'], { ackWaitMs: 60_000, maxDeliver: 9, maxAckPending: 10 });
    const r = await ensureConsumer(jsm, topo.streams.jobs, c2!);
    expect(r.action).toBe('updated');
    const info = await jsm.consumers.info(topo.streams.jobs, c2!.durable_name!);
    expect(info.config.max_deliver).toBe(9);
    expect(info.config.ack_wait).toBe(60_000 * 1_000_000);
  });

  it('keeps tenants apart: two prefixes on one server share no stream or subject', async () => {
    const a = topology();
    const b = topology();
    await ensureStreams(jsm, a.streamConfigs());
    await ensureStreams(jsm, b.streamConfigs());
    expect(a.jobSubject('normal', 'x')).not.toBe(b.jobSubject('normal', 'x'));
    expect(await jsm.streams.find(a.jobSubject('normal', 'x'))).toBe(a.streams.jobs);
    expect(await jsm.streams.find(b.jobSubject('normal', 'x'))).toBe(b.streams.jobs);
  });
});
