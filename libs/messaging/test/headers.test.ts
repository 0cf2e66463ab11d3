import { describe, expect, it } from 'vitest';
import { MsgHdrsImpl } from '@nats-io/nats-core/internal';
import {
  createHeaders,
  DEAD_LETTER_REASONS,
  H,
  HeaderError,
  headersToObject,
  readDeadLetterHeaders,
  readJobHeaders,
  writeDeadLetterHeaders,
  writeJobHeaders,
  type DeadLetterHeaders,
  type MsgHdrs,
} from '@redrive/messaging';

function hdrs(values: Record<string, string>): MsgHdrs {
  const h = createHeaders();
  for (const [k, v] of Object.entries(values)) h.set(k, v);
  return h;
}

// What a consumer receives: the headers encoded as NATS/1.0 and decoded again.
function overTheWire(h: MsgHdrs): MsgHdrs {
  return MsgHdrsImpl.decode((h as MsgHdrsImpl).encode());
}

function headerErrorOf(fn: () => unknown): HeaderError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HeaderError);
    return err as HeaderError;
  }
  throw new Error('expected a HeaderError');
}

describe('readJobHeaders: the job id', () => {
  it.each([
    { label: 'no headers at all', h: undefined, jobId: 'fallback-1' },
    { label: 'headers without ids', h: hdrs({ other: 'x' }), jobId: 'fallback-1' },
    { label: 'only a msg id', h: hdrs({ [H.msgId]: 'msg-1' }), jobId: 'msg-1' },
    { label: 'an empty job id and a msg id', h: hdrs({ [H.jobId]: '', [H.msgId]: 'msg-1' }), jobId: 'msg-1' },
    { label: 'a job id and a msg id', h: hdrs({ [H.jobId]: 'job-1', [H.msgId]: 'msg-1' }), jobId: 'job-1' },
  ])('with $label, the job id is $jobId', ({ h, jobId }) => {
    expect(readJobHeaders(h, 'fallback-1').jobId).toBe(jobId);
  });

  it('treats a message with no headers as a fresh job: attempt 0, nothing else set', () => {
    expect(readJobHeaders(undefined, 'stream-seq-42')).toEqual({ jobId: 'stream-seq-42', attempt: 0 });
  });
});

describe('readJobHeaders: attempts', () => {
  it.each([
    ['unset', {}, 0, undefined],
    ['empty', { [H.attempt]: '' }, 0, undefined],
    ['zero', { [H.attempt]: '0' }, 0, undefined],
    ['three of five', { [H.attempt]: '3', [H.maxAttempts]: '5' }, 3, 5],
    ['max attempts 0', { [H.maxAttempts]: '0' }, 0, 0],
  ])('reads %s', (_label, values, attempt, maxAttempts) => {
    const job = readJobHeaders(hdrs(values), 'f');
    expect(job.attempt).toBe(attempt);
    expect(job.maxAttempts).toBe(maxAttempts);
    expect('maxAttempts' in job).toBe(maxAttempts !== undefined);
  });

  it.each([
    [H.attempt, '-1'],
    [H.attempt, '1.5'],
    [H.attempt, 'two'],
    [H.attempt, '3x'],
    [H.attempt, '0x10'],
    [H.maxAttempts, '-3'],
    [H.maxAttempts, 'many'],
  ])('refuses %s: %j with a HeaderError naming the header', (name, value) => {
    const error = headerErrorOf(() => readJobHeaders(hdrs({ [name]: value }), 'f'));
    expect(error.header).toBe(name);
    expect(error.value).toBe(value);
    expect(error.message).toBe(`header ${name} is "${value}", expected a non-negative integer`);
  });
});

describe('readJobHeaders: not-before', () => {
  it.each([
    ['2030-01-02T03:04:05Z', '2030-01-02T03:04:05.000Z'],
    ['2030-01-02T03:04:05.678Z', '2030-01-02T03:04:05.678Z'],
    ['2030-01-02T05:04:05+02:00', '2030-01-02T03:04:05.000Z'],
  ])('reads the RFC 3339 time %j', (text, iso) => {
    expect(readJobHeaders(hdrs({ [H.notBefore]: text }), 'f').notBefore?.toISOString()).toBe(iso);
  });

  // The contract says RFC 3339. Date's parser also accepts many other shapes and quietly
  // turns them into some instant (often in the past, so the job runs at once), and a time
  // without an offset depends on the worker's time zone.
  it.each([
    ['a word', 'tomorrow'],
    ['a relative delay', '5s'],
    ['a bare number', '12'],
    ['zero', '0'],
    ['a date with a leading word', 'x 2030'],
    ['a date-time without an offset', '2030-01-01T00:00:00'],
    ['a US date', '1/2/2030'],
    ['an impossible day', '2030-02-30T00:00:00Z'],
  ])('refuses %s (%j) with a HeaderError naming the header', (_label, value) => {
    const error = headerErrorOf(() => readJobHeaders(hdrs({ [H.notBefore]: value }), 'f'));
    expect(error.header).toBe(H.notBefore);
    expect(error.message).toContain(H.notBefore);
    expect(error.message).toContain('RFC 3339');
  });
});

describe('readJobHeaders: trace context', () => {
  it('passes traceparent and tracestate through, and omits them when absent', () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(readJobHeaders(hdrs({ [H.traceparent]: tp, [H.tracestate]: 'k=v' }), 'f')).toMatchObject({
      traceparent: tp,
      tracestate: 'k=v',
    });
    const bare = readJobHeaders(hdrs({}), 'f');
    expect('traceparent' in bare || 'tracestate' in bare).toBe(false);
  });
});

describe('writeJobHeaders then readJobHeaders', () => {
  it.each([
    ['a fresh job', { jobId: 'j1', attempt: 0 }],
    ['a job with an idempotency key', { jobId: 'j1', msgId: 'key-1', attempt: 0 }],
    [
      'a retried job with a limit and a not-before time',
      { jobId: 'j1', msgId: 'key-1', attempt: 4, maxAttempts: 7, notBefore: new Date('2030-01-02T03:04:05.678Z') },
    ],
  ])('round-trips %s over the wire', (_label, job) => {
    const read = readJobHeaders(overTheWire(writeJobHeaders(job)), 'fallback');
    expect(read).toEqual(job);
  });

  it('writes onto headers it is given, keeping the ones already there', () => {
    const h = hdrs({ [H.traceparent]: 'tp', [H.attempt]: '9' });
    const out = writeJobHeaders({ jobId: 'j1', attempt: 2 }, h);
    expect(out).toBe(h);
    expect(out.get(H.traceparent)).toBe('tp');
    expect(out.values(H.attempt)).toEqual(['2']);
  });
});

describe('dead-letter headers', () => {
  it.each(
    DEAD_LETTER_REASONS.map((reason): [string, DeadLetterHeaders] => [
      reason,
      {
        originalSubject: 'jobs.normal.webhook',
        originalSeq: 1_234,
        reason,
        errorClass: 'server',
        error: 'HTTP 503 from https://example.com',
        attempts: 6,
      },
    ]),
  )('round-trip a %s dead letter over the wire', (_reason, dl) => {
    expect(readDeadLetterHeaders(overTheWire(writeDeadLetterHeaders(dl)))).toEqual(dl);
  });

  it('round-trip without the optional error class and text', () => {
    const dl: DeadLetterHeaders = {
      originalSubject: 'p.jobs.high.email',
      originalSeq: 0,
      reason: 'max_deliveries',
      attempts: 10,
    };
    expect(readDeadLetterHeaders(overTheWire(writeDeadLetterHeaders(dl)))).toEqual(dl);
  });

  it.each([
    ['an LF', 'first\nsecond', 'first second'],
    ['a CRLF', 'first\r\nsecond', 'first second'],
    ['blank lines', 'first\n\n\nsecond\r\n', 'first second'],
    [
      'a stack trace',
      'Error: boom\n    at f (a.js:1:1)\n    at g (b.js:2:2)',
      'Error: boom     at f (a.js:1:1)     at g (b.js:2:2)',
    ],
  ])('cut error text with %s to one line', (_label, error, written) => {
    const h = writeDeadLetterHeaders({
      originalSubject: 's',
      originalSeq: 1,
      reason: 'non_retryable',
      error,
      attempts: 1,
    });
    expect(overTheWire(h).get(H.error)).toBe(written);
  });

  it.each([
    [999, 999],
    [1_000, 1_000],
    [1_001, 1_000],
    [50_000, 1_000],
  ])('cut error text of %d characters to %d', (length, kept) => {
    const error = 'e'.repeat(length);
    const h = writeDeadLetterHeaders({
      originalSubject: 's',
      originalSeq: 1,
      reason: 'terminated',
      error,
      attempts: 1,
    });
    expect(overTheWire(h).get(H.error)).toBe('e'.repeat(kept));
  });

  it.each([
    ['no reason', { [H.originalSubject]: 's' }, H.reason],
    ['an unknown reason', { [H.reason]: 'gave_up', [H.originalSubject]: 's' }, H.reason],
    ['no original subject', { [H.reason]: 'terminated' }, H.originalSubject],
    [
      'a malformed sequence',
      { [H.reason]: 'terminated', [H.originalSubject]: 's', [H.originalSeq]: 'abc' },
      H.originalSeq,
    ],
    ['malformed attempts', { [H.reason]: 'terminated', [H.originalSubject]: 's', [H.attempts]: '-1' }, H.attempts],
  ])('refuse %s with a HeaderError naming the header', (_label, values, header) => {
    const error = headerErrorOf(() => readDeadLetterHeaders(hdrs(values)));
    expect(error.header).toBe(header);
    expect(error.message).toContain(header);
  });

  it('refuse a message without headers', () => {
    expect(headerErrorOf(() => readDeadLetterHeaders(undefined)).header).toBe(H.reason);
  });
});

describe('headersToObject', () => {
  it('gives every header as a plain object, and {} for none', () => {
    expect(headersToObject(hdrs({ a: '1', [H.jobId]: 'j' }))).toEqual({ a: '1', [H.jobId]: 'j' });
    expect(headersToObject(undefined)).toEqual({});
  });
});
