import { jetstream, jetstreamManager, RetentionPolicy, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureConsumer,
  ensureStream,
  ensureStreams,
  provisionJobTypes,
  serveJobTypes,
  Topology,
  TopologyConflictError,
} from '@redrive/messaging';
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

    const opts = { ackWaitMs: 30_000, maxDeliver: 7, maxAckPending: 50 };
    const created1 = await provisionJobTypes(jsm, topo, ['mail'], opts);
    expect(created1.map((r) => r.action)).toEqual(['created', 'created', 'created']);
    const again = await provisionJobTypes(jsm, topo, ['mail'], opts);
    expect(again.map((r) => r.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('updates a stream created by an older configuration in place, keeping its messages', async () => {
    const old = topology({ jobs: { maxAgeMs: 0, maxBytes: -1, maxMsgs: -1, duplicateWindowMs: 120_000 } });
    const [jobsOld] = old.streamConfigs();
    await ensureStream(jsm, jobsOld!);
    // A consumer so that the interest-retention stream keeps what is published.
    await provisionJobTypes(jsm, old, ['mail'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 10 });
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
    await serveJobTypes(jsm, topo, ['mail']);
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
    await serveJobTypes(jsm, a, ['x']);
    await serveJobTypes(jsm, b, ['x']);
    expect(a.jobSubject('normal', 'x')).not.toBe(b.jobSubject('normal', 'x'));
    expect(await jsm.streams.find(a.jobSubject('normal', 'x'))).toBe(a.streams.jobs);
    expect(await jsm.streams.find(b.jobSubject('normal', 'x'))).toBe(b.streams.jobs);
  });

  it('refuses a publish to a job type no worker serves, and stores one to a served type', async () => {
    const topo = topology();
    await ensureStreams(jsm, topo.streamConfigs());
    const js = jetstream(nc);
    const refused = (subject: string) =>
      js.publish(subject, '{}', { timeout: 2_000 }).then(
        () => false,
        () => true,
      );
    // Before any worker registers a type, no job subject is captured at all.
    expect(await refused(topo.jobSubject('normal', 'mail'))).toBe(true);
    await provisionJobTypes(jsm, topo, ['mail'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 10 });
    const ack = await js.publish(topo.jobSubject('high', 'mail'), '{}');
    expect(ack.stream).toBe(topo.streams.jobs);
    // An unserved type, and a lane that does not exist, are refused: never acknowledged and dropped.
    expect(await refused(topo.jobSubject('normal', 'unserved'))).toBe(true);
    expect(await refused(`${topo.options.prefix}.jobs.urgent.mail`)).toBe(true);
    expect((await jsm.streams.info(topo.streams.jobs)).state.messages).toBe(1);
  });

  it('keeps the subjects of every type when workers add theirs at the same moment', async () => {
    const topo = topology();
    await ensureStreams(jsm, topo.streamConfigs());
    const types = Array.from({ length: 6 }, (_, i) => `t${i}`);
    const opts = { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 10 };
    await Promise.all(types.map((t) => provisionJobTypes(jsm, topo, [t], opts)));
    const subjects = (await jsm.streams.info(topo.streams.jobs)).config.subjects ?? [];
    expect([...subjects].sort()).toEqual(topo.jobSubjectsOf(types).sort());
  });

  it('narrows an older JOBS that captured jobs.> to the subjects its worker consumers filter on', async () => {
    const topo = topology();
    await ensureStreams(jsm, topo.streamConfigs());
    const [jobs] = topo.streamConfigs();
    await jsm.streams.update(jobs!.name, {
      ...(await jsm.streams.info(jobs!.name)).config,
      subjects: [topo.allJobsSubject],
    });
    for (const c of topo.workerConsumerConfigs(['old'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 10 }))
      await ensureConsumer(jsm, topo.streams.jobs, c);
    await serveJobTypes(jsm, topo, ['new']);
    const subjects = (await jsm.streams.info(topo.streams.jobs)).config.subjects ?? [];
    expect([...subjects].sort()).toEqual(topo.jobSubjectsOf(['new', 'old']).sort());
  });
});
