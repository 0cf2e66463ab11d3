import { describe, expect, it } from 'vitest';
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { DEFAULT_TOPOLOGY, PRIORITIES, subjectMatches, Topology } from '@redrive/messaging';

const NS_PER_MS = 1_000_000;

describe('Topology names and subjects', () => {
  it.each([
    {
      prefix: '',
      streams: {
        jobs: 'JOBS',
        dlq: 'DLQ',
        advisories: 'ADVISORIES',
        events: 'EVENTS',
        schedule: 'SCHEDULE',
        completions: 'COMPLETIONS',
      },
      job: 'jobs.high.webhook',
      dlq: 'dlq.webhook',
      event: 'events.accepted',
      schedule: 'schedule.retry',
    },
    {
      prefix: 't1',
      streams: {
        jobs: 't1_JOBS',
        dlq: 't1_DLQ',
        advisories: 't1_ADVISORIES',
        events: 't1_EVENTS',
        schedule: 't1_SCHEDULE',
        completions: 't1_COMPLETIONS',
      },
      job: 't1.jobs.high.webhook',
      dlq: 't1.dlq.webhook',
      event: 't1.events.accepted',
      schedule: 't1.schedule.retry',
    },
  ])('with prefix "$prefix", names streams and subjects under it', (c) => {
    const t = new Topology({ prefix: c.prefix });
    expect(t.streams).toEqual(c.streams);
    expect(t.jobSubject('high', 'webhook')).toBe(c.job);
    expect(t.dlqSubject('webhook')).toBe(c.dlq);
    expect(t.eventSubject('accepted')).toBe(c.event);
    expect(t.scheduleSubject('retry')).toBe(c.schedule);
    // Consumer names live inside their stream, so they need no prefix.
    expect(t.workerConsumerName('low', 'webhook')).toBe('worker-low-webhook');
  });

  it('uses the defaults of DESIGN.md when given no options', () => {
    expect(new Topology().options).toEqual(DEFAULT_TOPOLOGY);
    expect(new Topology().streams.jobs).toBe('JOBS');
  });

  it.each([
    ['a dot', 'a.b'],
    ['a wildcard', 'a*'],
    ['a full wildcard', '>'],
    ['a space', 'a b'],
    ['a leading dash', '-a'],
    ['a leading underscore', '_a'],
    ['33 characters', 'x'.repeat(33)],
  ])('refuses a prefix with %s', (_label, prefix) => {
    expect(() => new Topology({ prefix })).toThrow(`invalid topology prefix "${prefix}"`);
  });

  it.each([['a'], ['Tenant_1'], ['run-42'], ['x'.repeat(32)]])('accepts the prefix %j', (prefix) => {
    expect(new Topology({ prefix }).streams.jobs).toBe(`${prefix}_JOBS`);
  });
});

describe('Topology.parseJobSubject', () => {
  it.each([
    ['', 'jobs.high.webhook', { priority: 'high', type: 'webhook' }],
    ['', 'jobs.low.send-email', { priority: 'low', type: 'send-email' }],
    ['', 'jobs.urgent.webhook', undefined],
    ['', 'jobs.normal', undefined],
    ['', 'jobs.normal.webhook.extra', undefined],
    ['', 'dlq.webhook', undefined],
    ['', 't1.jobs.high.webhook', undefined],
    ['t1', 't1.jobs.normal.webhook', { priority: 'normal', type: 'webhook' }],
    ['t1', 'jobs.normal.webhook', undefined],
    ['t1', 't2.jobs.normal.webhook', undefined],
    ['t1', 't1x.jobs.normal.webhook', undefined],
  ])('with prefix %j reads %j as %j', (prefix, subject, parsed) => {
    expect(new Topology({ prefix }).parseJobSubject(subject)).toEqual(parsed);
  });

  it('reads back every subject jobSubject builds', () => {
    const t = new Topology({ prefix: 'p' });
    for (const priority of PRIORITIES) {
      expect(t.parseJobSubject(t.jobSubject(priority, 'webhook'))).toEqual({ priority, type: 'webhook' });
    }
  });
});

describe('Topology.streamConfigs', () => {
  const byName = (t: Topology) => Object.fromEntries(t.streamConfigs().map((c) => [c.name, c]));

  it('provisions JOBS, DLQ, ADVISORIES, EVENTS, SCHEDULE and COMPLETIONS in that order', () => {
    expect(new Topology().streamConfigs().map((c) => c.name)).toEqual([
      'JOBS',
      'DLQ',
      'ADVISORIES',
      'EVENTS',
      'SCHEDULE',
      'COMPLETIONS',
    ]);
  });

  it('keeps unfinished jobs: JOBS uses interest retention and refuses new publishes when full', () => {
    const jobs = byName(new Topology()).JOBS!;
    // Workers add the subjects of the types they serve (serveJobTypes): none is captured before.
    expect(jobs.subjects).toBeUndefined();
    expect(new Topology().jobSubjectsOf(['mail'])).toEqual(['jobs.high.mail', 'jobs.normal.mail', 'jobs.low.mail']);
    expect(jobs.retention).toBe(RetentionPolicy.Interest);
    expect(jobs.discard).toBe(DiscardPolicy.New);
    expect(jobs.max_age).toBe(0);
    expect(jobs.max_bytes).toBe(-1);
    expect(jobs.max_msgs).toBe(-1);
    expect(jobs.duplicate_window).toBe(15 * 60_000 * NS_PER_MS);
  });

  it('keeps dead letters browsable: DLQ uses limits retention with the configured age', () => {
    const dlq = byName(new Topology({ dlq: { maxAgeMs: 5 * 86_400_000 } })).DLQ!;
    expect(dlq.subjects).toEqual(['dlq.>']);
    expect(dlq.retention).toBe(RetentionPolicy.Limits);
    expect(dlq.discard).toBe(DiscardPolicy.Old);
    expect(dlq.max_age).toBe(5 * 86_400_000 * NS_PER_MS);
  });

  it('captures the advisories of its own JOBS stream only', () => {
    const advisories = byName(new Topology({ prefix: 'p' })).p_ADVISORIES!;
    expect(advisories.subjects).toEqual([
      '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.p_JOBS.*',
      '$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.p_JOBS.*',
    ]);
    const own = advisories.subjects!;
    const matches = (s: string) => own.some((f) => subjectMatches(f, s));
    expect(matches('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.p_JOBS.worker-high-webhook')).toBe(true);
    expect(matches('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JOBS.worker-high-webhook')).toBe(false);
  });

  it('puts every subject of a prefixed installation under its prefix', () => {
    for (const c of new Topology({ prefix: 'p' }).streamConfigs()) {
      expect(c.name.startsWith('p_')).toBe(true);
      for (const s of c.subjects ?? []) expect(s.startsWith('p.') || s.includes('.p_JOBS.')).toBe(true);
    }
  });

  it('applies the options to every stream', () => {
    const t = new Topology({
      replicas: 3,
      storage: 'memory',
      jobs: { maxAgeMs: 60_000, maxBytes: 1_024, maxMsgs: 10, duplicateWindowMs: 1_000 },
      events: { maxAgeMs: 2_000, maxBytes: 2_048 },
      advisories: { maxAgeMs: 3_000 },
      schedule: { maxAgeMs: 4_000 },
    });
    const s = byName(t);
    for (const c of Object.values(s)) {
      expect(c.num_replicas).toBe(3);
      expect(c.storage).toBe(StorageType.Memory);
    }
    expect(s.JOBS).toMatchObject({
      max_age: 60_000 * NS_PER_MS,
      max_bytes: 1_024,
      max_msgs: 10,
      duplicate_window: 1_000 * NS_PER_MS,
    });
    expect(s.EVENTS).toMatchObject({ max_age: 2_000 * NS_PER_MS, max_bytes: 2_048 });
    expect(s.ADVISORIES!.max_age).toBe(3_000 * NS_PER_MS);
    expect(s.SCHEDULE!.max_age).toBe(4_000 * NS_PER_MS);
    expect(byName(new Topology()).JOBS!.storage).toBe(StorageType.File);
  });
});

describe('Topology.workerConsumerConfigs', () => {
  const opts = { ackWaitMs: 30_000, maxDeliver: 7, maxAckPending: 50 };

  it('creates one durable consumer per lane per type, each filtered to its own subject', () => {
    const configs = new Topology({ prefix: 'p' }).workerConsumerConfigs(['webhook', 'email'], opts);
    expect(configs.map((c) => [c.durable_name, c.filter_subject])).toEqual([
      ['worker-high-webhook', 'p.jobs.high.webhook'],
      ['worker-normal-webhook', 'p.jobs.normal.webhook'],
      ['worker-low-webhook', 'p.jobs.low.webhook'],
      ['worker-high-email', 'p.jobs.high.email'],
      ['worker-normal-email', 'p.jobs.normal.email'],
      ['worker-low-email', 'p.jobs.low.email'],
    ]);
  });

  it('acks explicitly and lets the server give up after max_deliver deliveries', () => {
    for (const c of new Topology().workerConsumerConfigs(['webhook'], opts)) {
      expect(c.ack_policy).toBe(AckPolicy.Explicit);
      expect(c.deliver_policy).toBe(DeliverPolicy.All);
      expect(c.max_deliver).toBe(7);
      expect(c.max_ack_pending).toBe(50);
      expect(c.ack_wait).toBe(30_000 * NS_PER_MS);
    }
  });

  it('creates no consumers for no types', () => {
    expect(new Topology().workerConsumerConfigs([], opts)).toEqual([]);
  });
});
