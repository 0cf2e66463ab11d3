import { describe, expect, it } from 'vitest';
import { parseRepeatSpec, planFire, type DueFire } from '@redrive/recurrence';

const t = (s: string) => new Date(`2025-06-01T12:00:${s}Z`);
const every = (extra: Record<string, unknown> = {}) => parseRepeatSpec({ every: 10_000, ...extra });
const THRESHOLD = 5_000;

describe('planFire', () => {
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
