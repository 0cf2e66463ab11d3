import { describe, expect, it } from 'vitest';
import { MsgHdrsImpl } from '@nats-io/nats-core/internal';
import {
  encodeEvent,
  H,
  redactUrlCredentials,
  redactUrls,
  writeDeadLetterHeaders,
  type LifecycleEvent,
  type MsgHdrs,
} from '@redrive/messaging';

const SLACK = 'https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/s3cr3tW3bh00kT0k3n';
const DISCORD = 'https://discord.com/api/webhooks/123456789/AbCdEf-s3cr3t_t0k3n?wait=true';

function overTheWire(h: MsgHdrs): MsgHdrs {
  return MsgHdrsImpl.decode((h as MsgHdrsImpl).encode());
}

describe('redactUrls', () => {
  it.each([
    [`POST ${SLACK} failed: HTTP 404`, 'POST https://hooks.slack.com/… failed: HTTP 404'],
    [`fetch ${DISCORD}: ECONNRESET`, 'fetch https://discord.com/…: ECONNRESET'],
    ['GET http://10.0.0.1:8080/a?token=abc#frag refused', 'GET http://10.0.0.1:8080/… refused'],
    ['see https://example.com/x/y.', 'see https://example.com/….'],
    ['(https://example.com/hook/secret)', '(https://example.com/…)'],
    ['"https://example.com/hook/secret"', '"https://example.com/…"'],
    [
      'nats://user:pa55word@nats:4222 and redis://:pw@redis:6379/0',
      'nats://***@nats:4222 and redis://***@redis:6379/…',
    ],
    ['a https://a.example/p then http://b.example:81/q?x=1', 'a https://a.example/… then http://b.example:81/…'],
  ])('%s', (text, redacted) => {
    expect(redactUrls(text)).toBe(redacted);
  });

  it.each([
    'HTTP 503 from https://example.com',
    'HTTP 503 from https://example.com/',
    'no URL here: just a message with a/path?and=query',
    'POST https://hooks.slack.com with a path failed',
  ])('leaves %j as it is', (text) => {
    expect(redactUrls(text)).toBe(text);
  });

  it('never keeps a secret path segment, whatever surrounds it', () => {
    for (const around of [' ', '\n', '\t', ', ', ': ']) {
      const out = redactUrls(`before${around}${SLACK}${around}after`);
      expect(out).not.toContain('s3cr3t');
      expect(out).not.toContain('T0AAAAAAA');
    }
  });
});

describe('redactUrlCredentials', () => {
  it('drops user and password and keeps the path', () => {
    expect(redactUrlCredentials('bad: "nats://alice:s3cret@nats.example:4222/x"')).toBe(
      'bad: "nats://***@nats.example:4222/x"',
    );
    expect(redactUrlCredentials('tls://token@host:4222')).toBe('tls://***@host:4222');
    expect(redactUrlCredentials('nats://host:4222')).toBe('nats://host:4222');
  });
});

describe('where error text is stored', () => {
  it('a dead letter carries only the origin of a webhook URL in Redrive-Error', () => {
    const h = writeDeadLetterHeaders({
      originalSubject: 'jobs.normal.notify',
      originalSeq: 7,
      reason: 'non_retryable',
      errorClass: 'client',
      error: `POST ${SLACK} answered HTTP 404\n    at deliver (http.js:1:1)`,
      attempts: 1,
    });
    const error = overTheWire(h).get(H.error);
    expect(error).toBe('POST https://hooks.slack.com/… answered HTTP 404     at deliver (http.js:1:1)');
    expect(error).not.toContain('s3cr3t');
  });

  it('a lifecycle event carries only the origin of a webhook URL in its error', () => {
    const event: LifecycleEvent = {
      id: 'e1',
      kind: 'attempt.failed',
      jobId: 'j1',
      type: 'notify',
      at: new Date(0).toISOString(),
      error: `fetch ${DISCORD} failed`,
    };
    const stored = JSON.parse(encodeEvent(event, 64 * 1024)) as LifecycleEvent;
    expect(stored.error).toBe('fetch https://discord.com/… failed');
  });

  it('a long error is redacted before it is cut, so a URL at the cut is not half kept', () => {
    const error = `${'x'.repeat(990)} ${SLACK}`;
    const h = writeDeadLetterHeaders({
      originalSubject: 's',
      originalSeq: 1,
      reason: 'terminated',
      error,
      attempts: 1,
    });
    expect(overTheWire(h).get(H.error)).not.toContain('/services');
  });
});
