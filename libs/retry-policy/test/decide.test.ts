import { describe, expect, it } from 'vitest';
import {
  HttpStatusError,
  JobTimeoutError,
  NonRetryableError,
  RateLimitError,
  RetryableError,
  SignatureError,
  ValidationError,
} from '@redrive/sdk';
import {
  backoffDelay,
  classify,
  createRetryPolicy,
  decideFailure,
  DEFAULT_CLASS_POLICIES,
  parseRetryAfter,
} from '@redrive/retry-policy';

const coded = (code: string, message = 'boom') => Object.assign(new Error(message), { code });
const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('classify', () => {
  it.each<[string, unknown, string]>([
    ['ECONNRESET', coded('ECONNRESET'), 'network'],
    ['ECONNREFUSED inside fetch’s cause', new TypeError('fetch failed', { cause: coded('ECONNREFUSED') }), 'network'],
    ['ETIMEDOUT', coded('ETIMEDOUT'), 'network'],
    ['EAI_AGAIN', coded('EAI_AGAIN'), 'network'],
    ['c-ares ETIMEOUT (a resolution that timed out)', coded('ETIMEOUT'), 'network'],
    ['c-ares ESERVFAIL', coded('ESERVFAIL'), 'network'],
    ['socket hang up', new Error('socket hang up'), 'network'],
    ['handler deadline', new JobTimeoutError(100), 'timeout'],
    ['AbortSignal.timeout', new DOMException('The operation timed out', 'TimeoutError'), 'timeout'],
    ['HTTP 408', new HttpStatusError(408, 'u'), 'timeout'],
    ['HTTP 429', new HttpStatusError(429, 'u'), 'rate_limit'],
    ['RateLimitError', new RateLimitError('slow down'), 'rate_limit'],
    ['HTTP 500', new HttpStatusError(500, 'u'), 'server'],
    ['HTTP 503', new HttpStatusError(503, 'u'), 'server'],
    ['Postgres connection failure 08006', coded('08006'), 'database'],
    ['Postgres serialization failure 40001', coded('40001'), 'database'],
    ['Postgres deadlock 40P01', coded('40P01'), 'database'],
    ['HTTP 400', new HttpStatusError(400, 'u'), 'client'],
    ['HTTP 404', new HttpStatusError(404, 'u'), 'client'],
    // A redirect the http handler does not follow (301/302/303, or 307/308 without Location)
    // is the target's final answer: dead-lettered, as docs/retries.md says of non-2xx statuses.
    ['HTTP 301', new HttpStatusError(301, 'u'), 'client'],
    ['HTTP 302', new HttpStatusError(302, 'u'), 'client'],
    ['HTTP 303', new HttpStatusError(303, 'u'), 'client'],
    ['HTTP 308', new HttpStatusError(308, 'u'), 'client'],
    ['an object with status 404', Object.assign(new Error('nope'), { status: 404 }), 'client'],
    ['an object with status 302', Object.assign(new Error('moved'), { status: 302 }), 'unknown'],
    ['SignatureError', new SignatureError('bad sig'), 'signature'],
    ['ValidationError', new ValidationError('bad', 'a.b'), 'validation'],
    ['a plain Error', new Error('what'), 'unknown'],
    ['a thrown string', 'oops', 'unknown'],
    ['Postgres unique violation 23505', coded('23505'), 'unknown'],
  ])('%s → %s', (_name, err, expected) => {
    expect(classify(err, NOW).errorClass).toBe(expected);
  });

  it('lets the handler decide with typed errors', () => {
    expect(classify(new NonRetryableError('no'))).toMatchObject({ retryable: false });
    expect(classify(new RetryableError('again', 1234))).toMatchObject({
      retryable: true,
      delayMs: 1234,
      errorClass: 'unknown',
    });
    expect(classify(new RetryableError('again', 10, { cause: coded('ECONNRESET') })).errorClass).toBe('network');
    expect(classify(new RateLimitError('wait', 7000))).toMatchObject({ errorClass: 'rate_limit', delayMs: 7000 });
  });

  it('honours Retry-After in seconds or as an HTTP date', () => {
    expect(classify(new HttpStatusError(429, 'u', '2'), NOW).delayMs).toBe(2000);
    expect(classify(new HttpStatusError(429, 'u', new Date(NOW + 5000).toUTCString()), NOW).delayMs).toBe(5000);
    expect(classify(new HttpStatusError(503, 'u', '30'), NOW).minDelayMs).toBe(30_000);
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
  });
});

describe('backoff', () => {
  it('grows base × 2^(retry-1), capped at the maximum, and jitter only shortens it', () => {
    const p = DEFAULT_CLASS_POLICIES.network;
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(p, n, () => 0))).toEqual([2000, 4000, 8000, 16000, 32000]);
    expect(backoffDelay(p, 20, () => 0)).toBe(300_000);
    expect(backoffDelay(p, 1, () => 1)).toBe(1600);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(p, 3, Math.random);
      expect(d).toBeGreaterThanOrEqual(6400);
      expect(d).toBeLessThanOrEqual(8000);
    }
  });
});

describe('decideFailure', () => {
  const policy = createRetryPolicy();
  const facts = (err: unknown, attempt: number, extra: Partial<Parameters<typeof decideFailure>[1]> = {}) => ({
    type: 'webhook',
    classification: classify(err, NOW),
    attempt,
    handoffThresholdMs: 30_000,
    now: NOW,
    random: () => 0,
    ...extra,
  });

  it('retries a network failure with growing delays and dead-letters it after exactly 1 + 5 attempts', () => {
    const decisions = [1, 2, 3, 4, 5, 6].map((a) => decideFailure(policy, facts(coded('ECONNRESET'), a)));
    expect(decisions.slice(0, 4).map((d) => d.kind)).toEqual(['nak', 'nak', 'nak', 'nak']);
    expect(decisions.slice(0, 4).map((d) => ('delayMs' in d ? d.delayMs : 0))).toEqual([2000, 4000, 8000, 16000]);
    expect(decisions[4]).toMatchObject({ kind: 'handoff', delayMs: 32_000, dueAt: new Date(NOW + 32_000) });
    expect(decisions[5]).toEqual({ kind: 'deadLetter', reason: 'retries_exhausted', errorClass: 'network' });
  });

  it('dead-letters a 400 after one attempt as non_retryable, class client', () => {
    expect(decideFailure(policy, facts(new HttpStatusError(400, 'u'), 1))).toEqual({
      kind: 'deadLetter',
      reason: 'non_retryable',
      errorClass: 'client',
    });
  });

  it('dead-letters a 302 from an http target after one attempt as non_retryable, class client', () => {
    expect(decideFailure(policy, facts(new HttpStatusError(302, 'u'), 1))).toEqual({
      kind: 'deadLetter',
      reason: 'non_retryable',
      errorClass: 'client',
    });
  });

  it('waits exactly Retry-After for a 429, and at least Retry-After for a 503', () => {
    expect(decideFailure(policy, facts(new HttpStatusError(429, 'u', '2'), 1))).toMatchObject({
      kind: 'nak',
      delayMs: 2000,
    });
    expect(decideFailure(policy, facts(new HttpStatusError(503, 'u', '20'), 1))).toMatchObject({
      kind: 'nak',
      delayMs: 20_000,
    });
    expect(decideFailure(policy, facts(new HttpStatusError(503, 'u', '1'), 1))).toMatchObject({
      kind: 'nak',
      delayMs: 5000,
    });
  });

  it('hands a delay longer than the threshold to the scheduler', () => {
    expect(decideFailure(policy, facts(new RateLimitError('x'), 1))).toMatchObject({
      kind: 'handoff',
      delayMs: 60_000,
    });
  });

  it('lets Redrive-Max-Attempts override the class budget', () => {
    expect(decideFailure(policy, facts(coded('ECONNRESET'), 2, { maxAttempts: 2 }))).toMatchObject({
      kind: 'deadLetter',
      reason: 'retries_exhausted',
    });
    expect(decideFailure(policy, facts(new Error('x'), 5, { maxAttempts: 10 })).kind).toBe('handoff');
    expect(decideFailure(policy, facts(new Error('x'), 5)).kind).toBe('deadLetter');
  });

  it('applies per-type overrides over the class defaults', () => {
    const custom = createRetryPolicy({ server: { maxRetries: 1 } }, { webhook: { server: { baseMs: 100 } } });
    expect(decideFailure(custom, facts(new HttpStatusError(500, 'u'), 1))).toMatchObject({ kind: 'nak', delayMs: 100 });
    expect(decideFailure(custom, facts(new HttpStatusError(500, 'u'), 2))).toMatchObject({ kind: 'deadLetter' });
    expect(decideFailure(custom, { ...facts(new HttpStatusError(500, 'u'), 1), type: 'other' })).toMatchObject({
      delayMs: 5000,
    });
  });

  it('refuses overrides of classes that do not exist', () => {
    expect(() => createRetryPolicy({ netwrok: {} } as never)).toThrow(/unknown error class "netwrok"/);
  });

  it('never retries a non-retryable error even when the budget is left', () => {
    expect(decideFailure(policy, facts(new NonRetryableError('stop'), 1, { maxAttempts: 10 }))).toMatchObject({
      kind: 'deadLetter',
      reason: 'non_retryable',
    });
  });
});
