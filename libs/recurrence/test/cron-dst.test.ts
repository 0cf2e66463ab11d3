import { describe, expect, it } from 'vitest';
import { firstFire, parseRepeatSpec, upcomingFires } from '@redrive/recurrence';

// The instants a cron schedule fires at, computed by the same pure functions the scheduler uses
// to advance a row, across the 2025 daylight-saving changes (Europe/Berlin: 30 March 02:00 CET →
// 03:00 CEST, 26 October 03:00 CEST → 02:00 CET; America/New_York: 9 March 02:00 EST → 03:00 EDT).

const fires = (repeat: unknown, from: string, count: number) => {
  const spec = parseRepeatSpec(repeat);
  return upcomingFires(spec, firstFire(spec, new Date(from))!, count).map((d) => d.toISOString());
};

describe('cron instants across daylight-saving changes', () => {
  it('fires a daily 09:00 in Europe/Berlin at 08:00Z before the spring change and 07:00Z after it', () => {
    expect(fires({ cron: '0 9 * * *', tz: 'Europe/Berlin' }, '2025-03-28T12:00:00Z', 4)).toEqual([
      '2025-03-29T08:00:00.000Z',
      '2025-03-30T07:00:00.000Z',
      '2025-03-31T07:00:00.000Z',
      '2025-04-01T07:00:00.000Z',
    ]);
  });

  it('fires a daily 02:30 that does not exist on the spring-forward day once, an hour later on the wall clock (03:30 CEST)', () => {
    expect(fires({ cron: '30 2 * * *', tz: 'Europe/Berlin' }, '2025-03-28T12:00:00Z', 4)).toEqual([
      '2025-03-29T01:30:00.000Z', // 02:30 CET
      '2025-03-30T01:30:00.000Z', // 03:30 CEST: 02:30 was skipped by the clock change
      '2025-03-31T00:30:00.000Z', // 02:30 CEST
      '2025-04-01T00:30:00.000Z',
    ]);
  });

  it('fires a daily 02:30 that happens twice on the fall-back day exactly once, at its first occurrence', () => {
    expect(fires({ cron: '30 2 * * *', tz: 'Europe/Berlin' }, '2025-10-24T12:00:00Z', 4)).toEqual([
      '2025-10-25T00:30:00.000Z', // 02:30 CEST
      '2025-10-26T00:30:00.000Z', // 02:30 CEST, the first of the two 02:30s
      '2025-10-27T01:30:00.000Z', // 02:30 CET
      '2025-10-28T01:30:00.000Z',
    ]);
  });

  it('fires an hourly schedule at every real hour through the repeated hour of the fall-back night', () => {
    expect(fires({ cron: '0 * * * *', tz: 'Europe/Berlin' }, '2025-10-25T23:30:00Z', 4)).toEqual([
      '2025-10-26T00:00:00.000Z', // 02:00 CEST
      '2025-10-26T01:00:00.000Z', // 02:00 CET
      '2025-10-26T02:00:00.000Z', // 03:00 CET
      '2025-10-26T03:00:00.000Z',
    ]);
  });

  it('keeps hourly fires one real hour apart when the spring-forward night has no 02:00', () => {
    expect(fires({ cron: '0 * * * *', tz: 'Europe/Berlin' }, '2025-03-29T23:30:00Z', 3)).toEqual([
      '2025-03-30T00:00:00.000Z', // 01:00 CET
      '2025-03-30T01:00:00.000Z', // 03:00 CEST
      '2025-03-30T02:00:00.000Z',
    ]);
  });

  it('moves a weekday 09:00 in America/New_York from 14:00Z to 13:00Z across the March change', () => {
    expect(fires({ cron: '0 9 * * 1-5', tz: 'America/New_York' }, '2025-03-06T20:00:00Z', 3)).toEqual([
      '2025-03-07T14:00:00.000Z', // Friday, EST
      '2025-03-10T13:00:00.000Z', // Monday, EDT
      '2025-03-11T13:00:00.000Z',
    ]);
  });

  it('reads a cron schedule in UTC when no time zone is given', () => {
    expect(fires({ cron: '30 2 * * *' }, '2025-03-29T12:00:00Z', 2)).toEqual([
      '2025-03-30T02:30:00.000Z',
      '2025-03-31T02:30:00.000Z',
    ]);
  });
});
