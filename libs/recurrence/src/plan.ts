import { catchUpFrom, nextFire, nextFireAfter } from './occurrences.js';
import type { RepeatSpec } from './spec.js';

/** `missed: all` publishes at most this many missed fires; older ones are skipped. */
export const MAX_CATCH_UP_FIRES = 100;

/** A schedule whose fire is due: one-shot when `repeat` is absent. */
export interface DueFire {
  /** When this fire was due. */
  readonly due: Date;
  /** Fires published before this one. */
  readonly fireCount: number;
  readonly repeat?: RepeatSpec | undefined;
}

/** What to do with a due fire: publish it or not, and when the schedule is due next (none: it is finished). */
export interface FirePlan {
  readonly publish: boolean;
  /** The number of this fire (1 for the first) when it is published. */
  readonly fireNumber: number;
  /** A fire missed by more than the threshold and dropped by the `skip` policy. */
  readonly skipped: boolean;
  readonly next: Date | undefined;
}

/**
 * Decides a due fire, as a pure function of the schedule, the time and the misfire threshold.
 * A fire later than `misfireThresholdMs` was missed (no scheduler ran at its time); the
 * schedule's `missed` policy then says: `once` publishes it and resumes at the first occurrence
 * after now (the missed ones collapse into this fire), `all` publishes it and resumes at the
 * very next occurrence (so every missed fire is published in turn, up to the last
 * `maxCatchUp` of them: older ones are skipped, so a schedule that was down for a year, or a
 * request with a due time long past, does not owe millions of immediate fires), `skip` drops it
 * and resumes at the first occurrence after now. A one-shot always publishes: a delayed job is
 * never dropped.
 */
export function planFire(
  fire: DueFire,
  now: Date,
  misfireThresholdMs: number,
  maxCatchUp = MAX_CATCH_UP_FIRES,
): FirePlan {
  const spec = fire.repeat;
  const fireNumber = fire.fireCount + 1;
  if (!spec) return { publish: true, fireNumber, skipped: false, next: undefined };
  const over =
    (spec.limit !== undefined && fire.fireCount >= spec.limit) ||
    (spec.until !== undefined && fire.due.getTime() > spec.until.getTime());
  if (over) return { publish: false, fireNumber, skipped: false, next: undefined };

  const missed = now.getTime() - fire.due.getTime() > misfireThresholdMs;
  if (missed && spec.missed === 'all') {
    const from = catchUpFrom(spec, fire.due, now, maxCatchUp);
    if (from.getTime() > fire.due.getTime()) {
      const resume = spec.until !== undefined && from.getTime() > spec.until.getTime() ? undefined : from;
      return { publish: false, fireNumber, skipped: true, next: resume };
    }
  }
  const publish = !(missed && spec.missed === 'skip');
  const fires = fire.fireCount + (publish ? 1 : 0);
  let next = spec.missed === 'all' ? nextFire(spec, fire.due) : nextFireAfter(spec, fire.due, now);
  if (spec.limit !== undefined && fires >= spec.limit) next = undefined;
  if (next && spec.until !== undefined && next.getTime() > spec.until.getTime()) next = undefined;
  return { publish, fireNumber, skipped: !publish, next };
}
