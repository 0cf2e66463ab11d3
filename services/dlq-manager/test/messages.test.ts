import { describe, expect, it } from 'vitest';
import { createHeaders, H, Topology, writeDeadLetterHeaders } from '@redrive/messaging';
import { advisoryDeadLetter } from '../src/dead-letters/advisories.js';
import { parseAdvisory } from '../src/dead-letters/claims.js';
import { deadLetterFromMessage, traceIdFromTraceparent } from '../src/dead-letters/recorder.js';
import { buildRedrive } from '../src/dead-letters/redrive.js';

const topology = new Topology({ prefix: 'acme' });
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('advisories', () => {
  it.each([
    [
      'MAX_DELIVERIES',
      {
        type: 'io.nats.jetstream.advisory.v1.max_deliver',
        stream: 'acme_JOBS',
        consumer: 'worker-normal-sync',
        stream_seq: 7,
        deliveries: 10,
      },
      { reason: 'max_deliveries', stream: 'acme_JOBS', consumer: 'worker-normal-sync', streamSeq: 7, deliveries: 10 },
    ],
    [
      'MSG_TERMINATED',
      {
        type: 'io.nats.jetstream.advisory.v1.terminated',
        stream: 'acme_JOBS',
        consumer: 'worker-high-x',
        consumer_seq: 3,
        stream_seq: 9,
        deliveries: 1,
      },
      { reason: 'terminated', stream: 'acme_JOBS', consumer: 'worker-high-x', streamSeq: 9, deliveries: 1 },
    ],
  ])('reads a %s advisory', (_name, body, expected) => {
    expect(parseAdvisory(enc(body))).toEqual(expected);
  });

  it.each([
    ['not JSON', new TextEncoder().encode('nope')],
    ['another advisory', enc({ type: 'io.nats.jetstream.advisory.v1.nak', stream: 'x', stream_seq: 1 })],
    ['no sequence', enc({ type: 'io.nats.jetstream.advisory.v1.max_deliver', stream: 'x' })],
    ['sequence 0', enc({ type: 'io.nats.jetstream.advisory.v1.max_deliver', stream: 'x', stream_seq: 0 })],
  ])('ignores %s', (_name, data) => {
    expect(parseAdvisory(data)).toBeUndefined();
  });

  const adv = {
    reason: 'max_deliveries' as const,
    stream: 'acme_JOBS',
    consumer: 'worker-normal-sync',
    streamSeq: 42,
    deliveries: 10,
  };

  it('dead-letters the original with its headers, the dead-letter headers and the message id the worker uses', () => {
    const h = createHeaders();
    h.set(H.jobId, 'job-1');
    h.set(H.msgId, 'job-1');
    h.set(H.attempt, '3');
    h.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const out = advisoryDeadLetter(
      adv,
      { present: true, subject: 'acme.jobs.normal.sync', data: enc({ a: 1 }), headers: h },
      topology,
    );
    expect(out.subject).toBe('acme.dlq.sync');
    expect(out.msgId).toBe('dlq:acme_JOBS:42');
    expect(JSON.parse(new TextDecoder().decode(out.data))).toEqual({ a: 1 });
    expect(out.headers.get(H.jobId)).toBe('job-1');
    expect(out.headers.get(H.msgId)).toBe('');
    expect(out.headers.get(H.reason)).toBe('max_deliveries');
    expect(out.headers.get(H.originalSeq)).toBe('42');
    expect(out.headers.get(H.originalSubject)).toBe('acme.jobs.normal.sync');
    // Attempts before this life's deliveries count too.
    expect(out.headers.get(H.attempts)).toBe('13');
    expect(out.headers.get('traceparent')).toContain('0af7651916cd43dd8448eb211c80319c');
    expect(out.headers.has('Redrive-Payload-Unavailable')).toBe(false);
  });

  it('marks the payload unavailable when the original is gone, keyed by its pointer', () => {
    const out = advisoryDeadLetter(
      { ...adv, reason: 'terminated' },
      { present: false, subject: 'acme.jobs.normal.sync' },
      topology,
    );
    expect(out.data.byteLength).toBe(0);
    expect(out.headers.get('Redrive-Payload-Unavailable')).toBe('true');
    expect(out.headers.get(H.jobId)).toBe('acme_JOBS:42');
    expect(out.headers.get(H.reason)).toBe('terminated');
    expect(out.headers.get(H.error)).toContain('payload is unavailable');
  });

  it('uses dlq.unknown when not even the subject is known', () => {
    expect(advisoryDeadLetter(adv, { present: false, subject: 'unknown' }, topology).subject).toBe('acme.dlq.unknown');
  });
});

describe('reading DLQ messages', () => {
  const dl = (extra: (h: ReturnType<typeof createHeaders>) => void = () => undefined) => {
    const h = writeDeadLetterHeaders({
      originalSubject: 'acme.jobs.low.mail',
      originalSeq: 5,
      reason: 'retries_exhausted',
      errorClass: 'network',
      error: 'read ECONNRESET',
      attempts: 6,
    });
    h.set(H.jobId, 'mail-1');
    extra(h);
    return { subject: 'acme.dlq.mail', seq: 11, data: enc({ to: 'a@b.c' }), headers: h, time: new Date(1_000) };
  };

  it('takes the entry from the headers; the original stream from the message id', () => {
    const got = deadLetterFromMessage(
      dl((h) => h.set(H.msgId, 'dlq:other_JOBS:5')),
      topology,
      'acme_DLQ',
    );
    expect(got).toMatchObject({
      jobId: 'mail-1',
      type: 'mail',
      originalStream: 'other_JOBS',
      originalSubject: 'acme.jobs.low.mail',
      originalSeq: 5,
      dlqStream: 'acme_DLQ',
      dlqSeq: 11,
      reason: 'retries_exhausted',
      errorClass: 'network',
      error: 'read ECONNRESET',
      attempts: 6,
      traceId: null,
    });
    expect(got.payload).not.toBeNull();
  });

  it('defaults to the installation JOBS stream when the message id says nothing', () => {
    expect(deadLetterFromMessage(dl(), topology, 'acme_DLQ').originalStream).toBe('acme_JOBS');
  });

  it('keeps no payload for a dead letter marked unavailable', () => {
    const got = deadLetterFromMessage(
      dl((h) => h.set('Redrive-Payload-Unavailable', 'true')),
      topology,
      'acme_DLQ',
    );
    expect(got.payload).toBeNull();
  });

  it('refuses a message without the dead-letter headers', () => {
    expect(() => deadLetterFromMessage({ ...dl(), headers: createHeaders() }, topology, 'acme_DLQ')).toThrow(
      /Redrive-Reason/,
    );
  });

  it.each([
    ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '0af7651916cd43dd8448eb211c80319c'],
    ['00-00000000000000000000000000000000-b7ad6b7169203331-01', null],
    ['garbage', null],
    [undefined, null],
  ])('reads the trace id of traceparent %s', (value, expected) => {
    expect(traceIdFromTraceparent(value)).toBe(expected);
  });
});

describe('redrive messages', () => {
  const source = {
    id: 31,
    jobId: 'job-9',
    originalSubject: 'acme.jobs.high.sync',
    dlqStream: 'acme_DLQ',
    dlqSeq: 77,
    redriveCount: 2,
    headers: {
      'Nats-Msg-Id': 'dlq:acme_JOBS:4',
      'Nats-Expected-Stream': 'acme_JOBS',
      'Redrive-Job-Id': 'job-9',
      'Redrive-Attempt': '4',
      'Redrive-Max-Attempts': '8',
      'Redrive-Not-Before': '2030-01-01T00:00:00Z',
      'Redrive-Reason': 'non_retryable',
      'Redrive-Error': 'boom',
      'Redrive-Error-Class': 'client',
      'Redrive-Attempts': '4',
      'Redrive-Original-Subject': 'acme.jobs.high.sync',
      'Redrive-Original-Seq': '4',
      // A fire's own schedule and an earlier life stay behind: the redriven job is a new life.
      'Redrive-Schedule-Id': 'sched-1',
      'Redrive-Schedule-Fire': '1',
      'Redrive-Life': '12.1',
      'Redrive-Repeat-Id': 'rep-1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'X-Tenant': 't1',
    },
    payload: enc({ a: 1 }),
  };

  it('goes back to the original subject, attempts reset, the death headers gone, a message id of its own', () => {
    const m = buildRedrive(source, { topology });
    expect(m.subject).toBe('acme.jobs.high.sync');
    expect(m.msgId).toBe('redrive:acme_DLQ:77:3');
    expect(m.headers.get(H.attempt)).toBe('0');
    expect(m.headers.get(H.jobId)).toBe('job-9');
    expect(m.headers.get(H.maxAttempts)).toBe('8');
    expect(m.headers.get('X-Tenant')).toBe('t1');
    expect(m.headers.get('traceparent')).toBe(source.headers.traceparent);
    expect(m.headers.get(H.repeatId)).toBe('rep-1');
    // The third redrive of dead letter 31 begins the job's life "31.3".
    expect(m.headers.get(H.life)).toBe('31.3');
    for (const gone of [
      'Redrive-Schedule-Id',
      'Redrive-Schedule-Fire',
      'Nats-Msg-Id',
      'Nats-Expected-Stream',
      'Redrive-Not-Before',
      'Redrive-Reason',
      'Redrive-Error',
      'Redrive-Error-Class',
      'Redrive-Attempts',
      'Redrive-Original-Seq',
      'Redrive-Original-Subject',
    ]) {
      expect(m.headers.has(gone), gone).toBe(false);
    }
    expect(new TextDecoder().decode(m.data)).toBe('{"a":1}');
  });

  it('goes to the retry-scheduler on schedule.redrive when delayed, with when and where', () => {
    const dueAt = new Date('2031-05-01T10:00:00Z');
    const m = buildRedrive(source, { topology, dueAt, payload: enc({ a: 2 }) });
    expect(m.subject).toBe('acme.schedule.redrive');
    expect(m.target).toBe('acme.jobs.high.sync');
    expect(m.headers.get(H.dueAt)).toBe('2031-05-01T10:00:00.000Z');
    expect(m.headers.get(H.originalSubject)).toBe('acme.jobs.high.sync');
    expect(new TextDecoder().decode(m.data)).toBe('{"a":2}');
  });

  it('needs a payload when the dead letter has none', () => {
    expect(() => buildRedrive({ ...source, payload: null }, { topology })).toThrow(/payload/);
    expect(buildRedrive({ ...source, payload: null }, { topology, payload: enc(1) }).data).toEqual(enc(1));
  });
});
