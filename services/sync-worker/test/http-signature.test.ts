import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignatureError } from '@redrive/sdk';
import { signWebhook, verifyWebhookSignature } from '../src/handlers/http.js';
import { signingKey } from '../src/handlers/webhook-signature.js';

// The test vector published with the Standard Webhooks reference libraries.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

/** HMAC-SHA256 over "id.timestamp.body", computed here straight from the spec. */
function independentSignature(key: Buffer, id: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

const vectorKey = Buffer.from(VECTOR.secret.slice('whsec_'.length), 'base64');

describe('Standard Webhooks signing', () => {
  it('signs the published vector exactly as the spec and an independent HMAC do', () => {
    const headers = signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body);
    expect(independentSignature(vectorKey, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
    expect(headers).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    });
  });

  it('signs bytes as given, not a re-encoding of them', () => {
    const body = Buffer.from([0x7b, 0x22, 0xc3, 0xa9, 0x22, 0x3a, 0x20, 0x31, 0x7d, 0x0a]); // {"é": 1}\n
    const signed = signWebhook(VECTOR.secret, 'msg_1', 1_700_000_000.9, new Uint8Array(body));
    expect(signed['webhook-timestamp']).toBe('1700000000');
    expect(signed['webhook-signature']).toBe(independentSignature(vectorKey, 'msg_1', 1_700_000_000, body));
  });

  it('uses a secret without the whsec_ prefix as raw key bytes', () => {
    const signed = signWebhook('plain-shared-secret', 'msg_2', 1_700_000_000, '{}');
    expect(signed['webhook-signature']).toBe(
      independentSignature(Buffer.from('plain-shared-secret'), 'msg_2', 1_700_000_000, '{}'),
    );
  });

  it('refuses a whsec_ secret that is not base64, and an empty one', () => {
    expect(() => signingKey('whsec_not base64!')).toThrow(/base64/);
    expect(() => signingKey('whsec_')).toThrow(/base64/);
    expect(() => signingKey('')).toThrow(/empty/);
    expect(signingKey('whsec_YWJj')).toEqual(Buffer.from('abc'));
    expect(signingKey('whsec_YWI')).toEqual(Buffer.from('ab')); // unpadded base64 is accepted
  });
});

describe('verifyWebhookSignature', () => {
  const headers = {
    'webhook-id': VECTOR.id,
    'webhook-timestamp': String(VECTOR.timestamp),
    'webhook-signature': VECTOR.signature,
  };
  const now = VECTOR.timestamp + 10;

  it('accepts the vector and returns the webhook id', () => {
    expect(verifyWebhookSignature(VECTOR.secret, headers, VECTOR.body, 300, now)).toBe(VECTOR.id);
    expect(verifyWebhookSignature(VECTOR.secret, new Headers(headers), Buffer.from(VECTOR.body), 300, now)).toBe(
      VECTOR.id,
    );
  });

  it('accepts any matching v1 signature among several (key rotation)', () => {
    const rotated = { ...headers, 'webhook-signature': `v1,AAAA v2,whatever ${VECTOR.signature}` };
    expect(verifyWebhookSignature(VECTOR.secret, rotated, VECTOR.body, 300, now)).toBe(VECTOR.id);
  });

  it('matches header names case-insensitively', () => {
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhookSignature(VECTOR.secret, upper, VECTOR.body, 300, now)).toBe(VECTOR.id);
  });

  const rejections: [string, () => unknown, RegExp][] = [
    [
      'a changed body',
      () => verifyWebhookSignature(VECTOR.secret, headers, '{"test": 2432232315}', 300, now),
      /matches/,
    ],
    [
      'another secret',
      () => verifyWebhookSignature('whsec_' + Buffer.from('x').toString('base64'), headers, VECTOR.body, 300, now),
      /matches/,
    ],
    [
      'a changed id',
      () => verifyWebhookSignature(VECTOR.secret, { ...headers, 'webhook-id': 'msg_x' }, VECTOR.body, 300, now),
      /matches/,
    ],
    [
      'an old timestamp',
      () => verifyWebhookSignature(VECTOR.secret, headers, VECTOR.body, 300, VECTOR.timestamp + 301),
      /old/,
    ],
    [
      'a future timestamp',
      () => verifyWebhookSignature(VECTOR.secret, headers, VECTOR.body, 300, VECTOR.timestamp - 301),
      /future/,
    ],
    [
      'a missing signature',
      () =>
        verifyWebhookSignature(VECTOR.secret, { ...headers, 'webhook-signature': undefined }, VECTOR.body, 300, now),
      /missing/,
    ],
    [
      'a non-numeric timestamp',
      () => verifyWebhookSignature(VECTOR.secret, { ...headers, 'webhook-timestamp': '1e9' }, VECTOR.body, 300, now),
      /unix seconds/,
    ],
    [
      'a signature of another version',
      () =>
        verifyWebhookSignature(
          VECTOR.secret,
          { ...headers, 'webhook-signature': VECTOR.signature.replace('v1,', 'v2,') },
          VECTOR.body,
          300,
          now,
        ),
      /matches/,
    ],
  ];
  for (const [what, verify, message] of rejections) {
    it(`rejects ${what} with SignatureError`, () => {
      expect(verify).toThrow(SignatureError);
      expect(verify).toThrow(message);
    });
  }
});
