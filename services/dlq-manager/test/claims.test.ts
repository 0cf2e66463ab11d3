import { describe, expect, it } from 'vitest';
import { judgeClaim, type Advisory, type ConsumerState } from '../src/dead-letters/claims.js';

const adv = (over: Partial<Advisory> = {}): Advisory => ({
  reason: 'max_deliveries',
  stream: 'JOBS',
  consumer: 'worker-normal-hook',
  streamSeq: 10,
  deliveries: 5,
  ...over,
});

/** A consumer that delivered sequence 10 five times (its max) and awaits no ack for it. */
const consumer = (over: Partial<ConsumerState> & { maxDeliver?: number; filter?: string } = {}): ConsumerState => ({
  delivered: { stream_seq: 12 },
  ack_floor: { stream_seq: 9 },
  num_ack_pending: 0,
  config: { max_deliver: over.maxDeliver ?? 5, filter_subject: over.filter ?? 'jobs.normal.hook' },
  ...over,
});

describe('judgeClaim: an advisory is acted on only when the consumer it names bears it out', () => {
  it('confirms a max-delivered message: delivered, max_deliver reached, no ack awaited', () => {
    expect(judgeClaim(adv(), consumer(), 'jobs.normal.hook')).toEqual({ verdict: 'confirmed' });
    // Other acks awaited, but the ack floor is past it (nats-server 2.12 moves it for such a message).
    expect(judgeClaim(adv(), consumer({ num_ack_pending: 3, ack_floor: { stream_seq: 11 } }), undefined)).toEqual({
      verdict: 'confirmed',
    });
    // A terminated message, whose original is gone already.
    expect(judgeClaim(adv({ reason: 'terminated', deliveries: 1 }), consumer(), undefined)).toEqual({
      verdict: 'confirmed',
    });
  });

  it.each<[string, Advisory, ConsumerState | undefined, string | undefined, RegExp]>([
    ['no such consumer', adv(), undefined, 'jobs.normal.hook', /does not exist/],
    ['a message of another subject', adv(), consumer(), 'jobs.normal.other', /does not deliver jobs\.normal\.other/],
    [
      'a message not delivered yet',
      adv({ streamSeq: 13 }),
      consumer(),
      'jobs.normal.hook',
      /has not delivered sequence 13 \(it has delivered up to 12\)/,
    ],
    [
      'fewer deliveries than max_deliver',
      adv({ deliveries: 2 }),
      consumer(),
      'jobs.normal.hook',
      /counts 2 deliveries/,
    ],
    ['a consumer without max_deliver', adv(), consumer({ maxDeliver: -1 }), 'jobs.normal.hook', /no max_deliver/],
    [
      'a terminated message not delivered yet',
      adv({ reason: 'terminated', streamSeq: 40 }),
      consumer(),
      undefined,
      /has not delivered sequence 40/,
    ],
  ])('refutes a claim about %s', (_what, a, c, subject, why) => {
    const v = judgeClaim(a, c, subject);
    expect(v.verdict).toBe('refuted');
    expect(v.verdict !== 'confirmed' && v.why).toMatch(why);
  });

  it('leaves undecided a message the consumer may still await an ack for', () => {
    const v = judgeClaim(adv(), consumer({ num_ack_pending: 1 }), 'jobs.normal.hook');
    expect(v).toEqual({ verdict: 'undecided', why: expect.stringMatching(/ack floor 9, 1 awaiting acks/) });
    expect(judgeClaim(adv({ reason: 'terminated' }), consumer({ num_ack_pending: 2 }), undefined).verdict).toBe(
      'undecided',
    );
  });

  it('matches multiple filter subjects and wildcards', () => {
    const multi = consumer({ config: { max_deliver: 5, filter_subjects: ['jobs.high.*', 'jobs.normal.hook'] } });
    expect(judgeClaim(adv(), multi, 'jobs.normal.hook').verdict).toBe('confirmed');
    expect(judgeClaim(adv(), multi, 'jobs.low.hook').verdict).toBe('refuted');
    const none = consumer({ config: { max_deliver: 5 } });
    expect(judgeClaim(adv(), none, 'anything.at.all').verdict).toBe('confirmed');
  });
});
