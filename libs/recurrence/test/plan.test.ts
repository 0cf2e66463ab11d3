import { describe, expect, it } from 'vitest';
import { MAX_CATCH_UP_FIRES, parseRepeatSpec, planFire, type DueFire } from '@redrive/recurrence';

const t = (s: string) => new Date(`2025-06-01T12:00:${s}Z`);
const every = (extra: Record<string, unknown> = {}) => parseRepeatSpec({ every: 10_000, ...extra });
const THRESHOLD = 5_000;

describe('planFire', () => {
  it('owes at most the last MAX_CATCH_UP_FIRES missed fires of a missed: all schedule', () => {
    // Every second since a due time a day ago: 86,400 missed fires.
    const spec = parseRepeatSpec({ every: 1_000, missed: 'all' });
    const now = new Date('2025-06-02T12:00:00.500Z');
    let fire: DueFire = { due: new Date('2025-06-01T12:00:00Z'), fireCount: 0, repeat: spec };
    let published = 0;
    let rounds = 0;
    for (; rounds < 1_000; rounds++) {
      const plan = planFire(fire, now, THRESHOLD);
      if (plan.publish) published++;
      if (!plan.next || plan.next.getTime() > now.getTime()) break;
      fire = { due: plan.next, fireCount: fire.fireCount + (plan.publish ? 1 : 0), repeat: spec };
    }
    expect(published).toBe(MAX_CATCH_UP_FIRES);
    expect(rounds).toBe(MAX_CATCH_UP_FIRES);
  });

  it('catches up the last missed fires of a cron schedule the same way', () => {
    const spec = parseRepeatSpec({ cron: '* * * * *', missed: 'all' });
    const now = new Date('2025-06-02T12:00:30Z');
    const plan = planFire({ due: new Date('2025-05-01T00:00:00Z'), fireCount: 0, repeat: spec }, now, THRESHOLD);
    expect(plan).toMatchObject({ publish: false, skipped: true });
    // The 100 most recent minutes up to now: 10:21 to 12:00.
    expect(plan.next).toEqual(new Date('2025-06-02T10:21:00Z'));
    // Fewer missed than the cap: every one is published.
    expect(
      planFire({ due: new Date('2025-06-02T11:58:00Z'), fireCount: 0, repeat: spec }, now, THRESHOLD),
    ).toMatchObject({
      publish: true,
      next: new Date('2025-06-02T11:59:00Z'),
    });
  });

  it('publishes a one-shot and finishes it, however late it is', () => {
    expect(planFire({ due: t('00'), fireCount: 0 }, t('59'), THRESHOLD)).toEqual({
      publish: true,
      fireNumber: 1,
      skipped: false,
      next: undefined,
    });
  });

  it.each<[string, DueFire, string, { publish: boolean; fireNumber: number; next: Date | undefined }]>([
    [
      'on time: the next interval',
      { due: t('00'), fireCount: 0, repeat: every() },
      '00',
      {
        publish: true,
        fireNumber: 1,
        next: t('10'),
      },
    ],
    [
      'slightly late (under the threshold): still the next interval',
      { due: t('00'), fireCount: 3, repeat: every() },
      '04',
      {
        publish: true,
        fireNumber: 4,
        next: t('10'),
      },
    ],
    [
      'missed, policy once: one fire now, resume after now',
      { due: t('00'), fireCount: 0, repeat: every() },
      '35',
      {
        publish: true,
        fireNumber: 1,
        next: t('40'),
      },
    ],
    [
      'missed, policy all: fire, then the very next (also past) occurrence',
      { due: t('00'), fireCount: 0, repeat: every({ missed: 'all' }) },
      '35',
      {
        publish: true,
        fireNumber: 1,
        next: t('10'),
      },
    ],
    [
      'missed, policy skip: no fire, resume after now',
      { due: t('00'), fireCount: 2, repeat: every({ missed: 'skip' }) },
      '35',
      {
        publish: false,
        fireNumber: 3,
        next: t('40'),
      },
    ],
    [
      'on time, policy skip: fires',
      { due: t('00'), fireCount: 0, repeat: every({ missed: 'skip' }) },
      '01',
      {
        publish: true,
        fireNumber: 1,
        next: t('10'),
      },
    ],
    [
      'the fire that reaches the limit ends the schedule',
      { due: t('40'), fireCount: 4, repeat: every({ limit: 5 }) },
      '40',
      {
        publish: true,
        fireNumber: 5,
        next: undefined,
      },
    ],
    [
      'a next fire past until ends the schedule',
      { due: t('00'), fireCount: 0, repeat: every({ until: '2025-06-01T12:00:05Z' }) },
      '00',
      {
        publish: true,
        fireNumber: 1,
        next: undefined,
      },
    ],
    [
      'a next fire exactly at until still happens',
      { due: t('00'), fireCount: 0, repeat: every({ until: '2025-06-01T12:00:10Z' }) },
      '00',
      {
        publish: true,
        fireNumber: 1,
        next: t('10'),
      },
    ],
    [
      'a due fire after until is not published',
      { due: t('20'), fireCount: 1, repeat: every({ until: '2025-06-01T12:00:10Z' }) },
      '20',
      {
        publish: false,
        fireNumber: 2,
        next: undefined,
      },
    ],
  ])('%s', (_name, fire, now, want) => {
    expect(planFire(fire, t(now), THRESHOLD)).toMatchObject(want);
  });

  it('collapses missed cron fires into one under the once policy', () => {
    const spec = parseRepeatSpec({ cron: '*/10 * * * * *' });
    expect(planFire({ due: t('00'), fireCount: 0, repeat: spec }, t('35'), THRESHOLD)).toMatchObject({
      publish: true,
      next: t('40'),
    });
  });
});
