import { CronExpressionParser } from 'cron-parser';
import type { RepeatSpec } from './spec.js';

/**
 * The first cron instant strictly after `after`, read in `tz`. Across a daylight-saving change
 * this follows cron-parser: a wall-clock time that does not exist that day (02:30 when clocks
 * jump from 02:00 to 03:00) fires at the same offset after the jump (03:30), and one that
 * happens twice (02:30 when clocks fall back) fires once, at its first occurrence; expressions
 * that match every hour or more often fire at every real instant they match.
 */
export function cronAfter(expr: string, tz: string | undefined, after: Date): Date | undefined {
  try {
    return CronExpressionParser.parse(expr, { currentDate: after, tz: tz ?? 'UTC' })
      .next()
      .toDate();
  } catch {
    return undefined;
  }
}

/**
 * When a repeating schedule fires first. With `startAt` (a producer's delay or runAt) an `every`
 * schedule fires at that instant and a cron schedule at its first instant from then on; without
 * it, one interval from `now`, or the next cron instant after `now`.
 */
export function firstFire(spec: RepeatSpec, now: Date, startAt?: Date): Date | undefined {
  if (spec.every !== undefined) return startAt ?? new Date(now.getTime() + spec.every);
  const from = startAt ? new Date(startAt.getTime() - 1) : now;
  return cronAfter(spec.cron!, spec.tz, from);
}

/** The occurrence after the one due at `due`; undefined when the expression has no more. */
export function nextFire(spec: RepeatSpec, due: Date): Date | undefined {
  if (spec.every !== undefined) return new Date(due.getTime() + spec.every);
  return cronAfter(spec.cron!, spec.tz, due);
}

/** The first occurrence after the one due at `due` that is also later than `now`. */
export function nextFireAfter(spec: RepeatSpec, due: Date, now: Date): Date | undefined {
  if (spec.every !== undefined) {
    const periods = Math.max(1, Math.floor((now.getTime() - due.getTime()) / spec.every) + 1);
    return new Date(due.getTime() + periods * spec.every);
  }
  return cronAfter(spec.cron!, spec.tz, due.getTime() > now.getTime() ? due : now);
}

/**
 * The earliest of the last `max` occurrences due at or before `now`, for a schedule whose fire at
 * `due` was missed; `due` itself when no more than `max` occurrences were missed.
 */
export function catchUpFrom(spec: RepeatSpec, due: Date, now: Date, max: number): Date {
  if (spec.every !== undefined) {
    const behind = Math.floor((now.getTime() - due.getTime()) / spec.every) + 1;
    return behind <= max ? due : new Date(due.getTime() + (behind - max) * spec.every);
  }
  try {
    const it = CronExpressionParser.parse(spec.cron!, {
      currentDate: new Date(now.getTime() + 1),
      tz: spec.tz ?? 'UTC',
    });
    let earliest = due;
    for (let i = 0; i < max; i++) {
      const at = it.prev().toDate();
      if (at.getTime() <= due.getTime()) return due;
      earliest = at;
    }
    return earliest;
  } catch {
    return due;
  }
}

/** The next `count` fire instants from `first` on (inclusive), for previews and tests. */
export function upcomingFires(spec: RepeatSpec, first: Date, count: number): Date[] {
  const out: Date[] = [];
  let at: Date | undefined = first;
  while (at && out.length < count) {
    out.push(at);
    at = nextFire(spec, at);
  }
  return out;
}
