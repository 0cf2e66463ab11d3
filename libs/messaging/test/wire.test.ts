import { describe, expect, it } from 'vitest';
import { carryHeaders, createHeaders, H, keyedJobId, msgIds, type Hop } from '@redrive/messaging';

// The wire contract's rules as tables: what travels on each hop, and ids that cannot collide.

const job = () => {
  const h = createHeaders();
  h.set(H.msgId, 'key:t:k');
  h.set(H.jobId, 'j1');
  h.set(H.attempt, '2');
  h.set(H.maxAttempts, '5');
  h.set(H.notBefore, '2030-01-01T00:00:00Z');
  h.set(H.idempotencyKey, 'k');
  h.set(H.life, '7.1');
  h.set(H.repeatId, 'rep');
  h.set(H.scheduleId, 'sched-of-an-earlier-fire');
  h.set(H.scheduleFire, '3');
  h.set(H.dueAt, '2030-01-01T00:00:00Z');
  h.set(H.reason, 'non_retryable');
  h.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  h.set('X-Tenant', 't1');
  h.set('Nats-Expected-Stream', 'JOBS');
  return h;
};

describe('carryHeaders: exactly what each hop allows', () => {
  const identity = [H.maxAttempts, H.idempotencyKey, H.repeatId, 'traceparent', 'X-Tenant'];
  const never = [
    H.msgId,
    H.jobId,
    H.attempt,
    H.notBefore,
    H.scheduleId,
    H.scheduleFire,
    H.dueAt,
    H.reason,
    'Nats-Expected-Stream',
  ];
  it.each<[Hop, boolean]>([
    ['handOff', true],
    ['schedule', true],
    ['deadLetter', true],
    ['redrive', false],
  ])(
    '%s carries the identity and producer headers (life: %s), never ids, times or another hop’s headers',
    (hop, life) => {
      const out = carryHeaders(hop, job());
      for (const name of identity) expect(out.get(name), name).not.toBe('');
      expect(out.has(H.life)).toBe(life);
      for (const name of never) expect(out.has(name), name).toBe(false);
    },
  );
});

describe('ids', () => {
  it('names the JOBS message in a hand-off, so two waits with one attempt count are two hand-offs', () => {
    expect(msgIds.handOff('j', '', 1, 10)).not.toBe(msgIds.handOff('j', '', 1, 11));
    expect(msgIds.handOff('j', '', 1, 10)).not.toBe(msgIds.handOff('j', '7.1', 1, 10));
  });

  it.each([
    ['order', 'order'],
    ['order:1', 'order%3A1'],
    ['50%:off', '50%25%3Aoff'],
  ])('writes key %s into the job id as %s', (key, written) => {
    expect(keyedJobId('t', key)).toBe(`t:${written}`);
  });

  it('never makes a keyed job id equal to a fire of a keyed repeat', () => {
    const keys = ['order', 'order:1', 'order:2', 'a:b:1', '%3A', ':', '1', 'x%253A1'];
    const jobIds = new Set(keys.map((k) => keyedJobId('t', k)));
    for (const k of keys) for (const n of [1, 2, 3]) expect(jobIds.has(`${keyedJobId('t', k)}:${n}`)).toBe(false);
    expect(jobIds.size).toBe(keys.length);
  });
});
