import { describe, expect, it } from 'vitest';
import { firstFire, isTimeZone, parseRepeatSpec, RepeatSpecError, repeatSpecToJson } from '@redrive/recurrence';

const refusal = (input: unknown): string => {
  try {
    parseRepeatSpec(input);
  } catch (err) {
    expect(err).toBeInstanceOf(RepeatSpecError);
    return (err as Error).message;
  }
  throw new Error('expected a RepeatSpecError');
};

describe('parseRepeatSpec', () => {
  it('accepts every with a limit and until, defaulting missed to once', () => {
    const spec = parseRepeatSpec({ every: 30_000, limit: 120, until: '2030-01-01T01:00:00+01:00' });
    expect(spec).toEqual({ every: 30_000, limit: 120, until: new Date('2030-01-01T00:00:00Z'), missed: 'once' });
    expect(repeatSpecToJson(spec)).toEqual({
      every: 30_000,
      limit: 120,
      until: '2030-01-01T00:00:00.000Z',
      missed: 'once',
    });
  });

  it('accepts cron with a time zone and a missed policy', () => {
    expect(parseRepeatSpec({ cron: ' 0 9 * * MON-FRI ', tz: 'Europe/Berlin', missed: 'skip' })).toEqual({
      cron: '0 9 * * MON-FRI',
      tz: 'Europe/Berlin',
      missed: 'skip',
    });
  });

  it.each([
    [{}, 'repeat needs exactly one of "every" (milliseconds) or "cron" (an expression)'],
    [{ every: 1000, cron: '* * * * *' }, 'repeat needs exactly one of'],
    [{ every: 999 }, 'repeat.every must be a whole number of milliseconds from 1000'],
    [{ every: 1500.5 }, 'repeat.every must be a whole number'],
    [{ every: 1000, tz: 'Europe/Berlin' }, 'repeat.tz applies only to cron schedules'],
    [{ cron: '61 * * * *' }, 'repeat.cron "61 * * * *" is not a valid cron expression'],
    [{ cron: 'every day' }, 'repeat.cron "every day" is not a cron expression'],
    [{ cron: '0 0 30 2 *' }, 'repeat.cron "0 0 30 2 *" is not a valid cron expression'],
    [{ cron: 'H * * * *' }, 'uses H (a random value)'],
    [{ cron: '* * * * *', tz: 'Mars/Olympus_Mons' }, 'repeat.tz "Mars/Olympus_Mons" is not a known IANA time zone'],
    [{ every: 1000, limit: 0 }, 'repeat.limit must be a whole number of fires, at least 1'],
    [{ every: 1000, until: 'tomorrow' }, 'repeat.until must be an RFC 3339 time'],
    [{ every: 1000, missed: 'later' }, 'repeat.missed must be one of once, all, skip'],
    [{ every: 1000, times: 3 }, 'repeat.times is not a repeat field'],
    ['every minute', 'repeat must be an object'],
  ])('refuses %j: %s', (input, message) => {
    expect(refusal(input)).toContain(message);
  });

  it('knows IANA zones and refuses made-up ones', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Europe/Atlantis')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });
});

describe('firstFire', () => {
  const now = new Date('2025-06-01T12:00:10Z');
  it('fires an every schedule one interval from now, or at its start time', () => {
    expect(firstFire(parseRepeatSpec({ every: 5_000 }), now)).toEqual(new Date('2025-06-01T12:00:15Z'));
    expect(firstFire(parseRepeatSpec({ every: 5_000 }), now, new Date('2025-06-01T13:00:00Z'))).toEqual(
      new Date('2025-06-01T13:00:00Z'),
    );
  });

  it('fires a cron schedule at its next instant, or its first instant from the start time on', () => {
    expect(firstFire(parseRepeatSpec({ cron: '*/15 * * * *' }), now)).toEqual(new Date('2025-06-01T12:15:00Z'));
    expect(firstFire(parseRepeatSpec({ cron: '0 * * * *' }), now, new Date('2025-06-01T13:00:00Z'))).toEqual(
      new Date('2025-06-01T13:00:00Z'),
    );
  });
});
