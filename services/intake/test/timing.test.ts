import { describe, expect, it } from 'vitest';
import { decideTiming, TimingError, type TimingRequest } from '../src/timing.js';

const now = new Date('2030-01-01T12:00:00Z');
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const decide = (req: TimingRequest) => decideTiming(req, { now, handoffThresholdMs: 30_000 });
const refusal = (req: TimingRequest) => {
  try {
    decide(req);
  } catch (err) {
    expect(err).toBeInstanceOf(TimingError);
    return (err as Error).message;
  }
  throw new Error('expected a TimingError');
};

describe('decideTiming', () => {
  it.each<[string, TimingRequest, ReturnType<typeof decide>]>([
    ['no timing: now', {}, { kind: 'now' }],
    ['delay 0: now', { delay: 0 }, { kind: 'now' }],
    ['a short delay waits on JOBS', { delay: 3_000 }, { kind: 'notBefore', at: at(3_000) }],
    ['a delay at the threshold still waits on JOBS', { delay: 30_000 }, { kind: 'notBefore', at: at(30_000) }],
    ['a longer delay goes to the scheduler', { delay: 30_001 }, { kind: 'later', at: at(30_001) }],
    [
      'runAt an hour ahead goes to the scheduler',
      { runAt: '2030-01-01T13:00:00Z' },
      { kind: 'later', at: at(3_600_000) },
    ],
    ['runAt with an offset', { runAt: '2030-01-01T13:00:10+01:00' }, { kind: 'notBefore', at: at(10_000) }],
    ['runAt a moment ago runs now', { runAt: '2030-01-01T11:59:58Z' }, { kind: 'now' }],
  ])('%s', (_name, req, want) => {
    expect(decide(req)).toEqual(want);
  });

  it('sends every repeat to the scheduler, first firing one interval from now or at its start', () => {
    expect(decide({ repeat: { every: 60_000 } })).toMatchObject({ kind: 'repeat', first: at(60_000) });
    expect(decide({ repeat: { every: 60_000 }, delay: 1_000 })).toMatchObject({ kind: 'repeat', first: at(1_000) });
    expect(decide({ repeat: { cron: '0 9 * * *', tz: 'Europe/Berlin' } })).toMatchObject({
      kind: 'repeat',
      first: new Date('2030-01-02T08:00:00Z'),
    });
  });

  it.each<[TimingRequest, string]>([
    [
      { delay: 1_000, runAt: '2030-01-01T13:00:00Z' },
      'give either delay (milliseconds from now) or runAt (a time), not both',
    ],
    [{ runAt: '2030-01-01 13:00' }, 'runAt "2030-01-01 13:00" is not an RFC 3339 time with an offset'],
    [{ runAt: '2030-01-01T11:59:00Z' }, 'runAt 2030-01-01T11:59:00Z is 60 s in the past'],
    [{ repeat: { cron: '0 25 * * *' } }, 'repeat.cron "0 25 * * *" is not a valid cron expression'],
    [
      { repeat: { cron: '0 9 * * *', tz: 'Moon/Tranquility' } },
      'repeat.tz "Moon/Tranquility" is not a known IANA time zone',
    ],
    [
      { repeat: { every: 60_000, until: '2030-01-01T12:00:30Z' } },
      'repeat.until 2030-01-01T12:00:30.000Z is before the first fire',
    ],
  ])('refuses %j', (req, message) => {
    expect(refusal(req)).toContain(message);
  });
});
