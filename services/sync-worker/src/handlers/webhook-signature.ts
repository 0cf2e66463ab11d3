import { createHmac, timingSafeEqual } from 'node:crypto';
import { SignatureError } from '@redrive/sdk';

// Standard Webhooks (https://www.standardwebhooks.com): the sender signs
// "<webhook-id>.<webhook-timestamp>.<body>" with HMAC-SHA256 and sends
// `webhook-signature: v1,<base64>`; receivers check the signature and the timestamp's age,
// and use the id to drop duplicates (it stays the same across retries).

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The HMAC key of a signing secret: the base64-decoded part of a `whsec_…` secret, or the
 * secret's own UTF-8 bytes. Throws when a `whsec_` secret is not valid base64.
 */
export function signingKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) {
    if (secret === '') throw new TypeError('a signing secret must not be empty');
    return Buffer.from(secret, 'utf8');
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded) || encoded.length % 4 === 1) {
    throw new TypeError('a whsec_ signing secret must be followed by base64 (whsec_<base64 key>)');
  }
  return Buffer.from(encoded, 'base64');
}

function toBytes(body: string | Uint8Array): Buffer {
  return typeof body === 'string'
    ? Buffer.from(body, 'utf8')
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function digest(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(toBytes(body)).digest();
}

/** The three Standard Webhooks headers for one send of `body`. */
export interface WebhookSignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** Signs `body` for message `id` at `timestampSec` (unix seconds) with a `whsec_…` or raw secret. */
export function signWebhook(
  secret: string | Buffer,
  id: string,
  timestampSec: number,
  body: string | Uint8Array,
): WebhookSignatureHeaders {
  const key = typeof secret === 'string' ? signingKey(secret) : secret;
  const timestamp = String(Math.floor(timestampSec));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${digest(key, id, timestamp, body).toString('base64')}`,
  };
}

type HeaderSource = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(' ') : (value as string | undefined);
}

/**
 * Verifies a Standard Webhooks request: one of the `v1` signatures in `webhook-signature`
 * must match `body` (the raw bytes as received) and `webhook-timestamp` must be within
 * `toleranceSec` of now. Throws SignatureError saying what failed; returns the webhook id.
 */
export function verifyWebhookSignature(
  secret: string,
  headers: HeaderSource,
  body: string | Uint8Array,
  toleranceSec = 300,
  nowSec: number = Date.now() / 1000,
): string {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new SignatureError('missing webhook-id, webhook-timestamp or webhook-signature header');
  }
  if (!/^\d+$/.test(timestamp)) throw new SignatureError(`webhook-timestamp is not unix seconds: "${timestamp}"`);
  const age = nowSec - Number(timestamp);
  if (Math.abs(age) > toleranceSec) {
    throw new SignatureError(
      `webhook-timestamp is ${Math.round(Math.abs(age))} s ${age > 0 ? 'old' : 'in the future'} (tolerance ${toleranceSec} s)`,
    );
  }
  const expected = digest(signingKey(secret), id, timestamp, body);
  for (const entry of signatures.split(' ')) {
    const [version, value] = entry.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return id;
  }
  throw new SignatureError('no v1 signature in webhook-signature matches the body');
}
