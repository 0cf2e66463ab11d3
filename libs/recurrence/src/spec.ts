import { CronExpressionParser } from 'cron-parser';

/** What happens to fires a repeating schedule missed while no scheduler could fire them. */
export const MISSED_POLICIES = ['once', 'all', 'skip'] as const;
export type MissedPolicy = (typeof MISSED_POLICIES)[number];

/** The shortest interval of an `every` schedule. */
export const MIN_EVERY_MS = 1_000;
/** The longest interval of an `every` schedule (about ten years). */
export const MAX_EVERY_MS = 10 * 366 * 86_400_000;

/**
 * How a job repeats: every `every` ms, or at the instants of a cron expression read in the time
 * zone `tz` (UTC unless set); at most `limit` fires and none after `until`.
 */
export interface RepeatSpec {
  readonly every?: number;
  readonly cron?: string;
  readonly tz?: string;
  readonly limit?: number;
  readonly until?: Date;
  readonly missed: MissedPolicy;
}

/** A repeat specification that cannot be used; `field` names the part that is wrong. */
export class RepeatSpecError extends Error {
  override readonly name = 'RepeatSpecError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field} ${message}`);
  }
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseInstant(text: string): Date | undefined {
  if (!RFC3339.test(text)) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** True when `tz` is an IANA time zone this runtime knows (Europe/Berlin, America/New_York, UTC …). */
export function isTimeZone(tz: string): boolean {
  if (tz.trim() === '' || tz !== tz.trim()) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Checks a cron expression (5 fields, or 6 with seconds first); throws RepeatSpecError saying why it is not one. */
export function checkCron(expr: string, field = 'repeat.cron'): void {
  const fields = expr.trim().split(/\s+/);
  // `H` picks a random value per parse, so replicas would disagree on the next fire. (The only
  // other H a field can hold is in the day name THU.)
  if (!expr.trim().startsWith('@') && fields.some((f) => /h/i.test(f.replace(/thu/gi, '')))) {
    throw new RepeatSpecError(field, `"${expr}" uses H (a random value), which the scheduler does not support`);
  }
  if (!expr.trim().startsWith('@') && (fields.length < 5 || fields.length > 6)) {
    throw new RepeatSpecError(
      field,
      `"${expr}" is not a cron expression: expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first`,
    );
  }
  try {
    // An expression that never matches (30 February) fails here rather than at its first fire.
    CronExpressionParser.parse(expr, { tz: 'UTC', strict: false }).next();
  } catch (err) {
    throw new RepeatSpecError(field, `"${expr}" is not a valid cron expression: ${(err as Error).message}`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const KNOWN_FIELDS = new Set(['every', 'cron', 'tz', 'limit', 'until', 'missed']);

/**
 * Validates a repeat specification as producers write it (JSON: `every` in ms or `cron`, and
 * optional `tz`, `limit`, `until` as RFC 3339, `missed`); throws RepeatSpecError naming the field.
 */
export function parseRepeatSpec(input: unknown, field = 'repeat'): RepeatSpec {
  if (!isRecord(input)) throw new RepeatSpecError(field, 'must be an object');
  for (const key of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(key))
      throw new RepeatSpecError(`${field}.${key}`, 'is not a repeat field (every, cron, tz, limit, until, missed)');
  }
  const { every, cron, tz, limit, until, missed } = input;
  if ((every === undefined) === (cron === undefined)) {
    throw new RepeatSpecError(field, 'needs exactly one of "every" (milliseconds) or "cron" (an expression)');
  }
  if (every !== undefined) {
    if (typeof every !== 'number' || !Number.isInteger(every) || every < MIN_EVERY_MS || every > MAX_EVERY_MS) {
      throw new RepeatSpecError(
        `${field}.every`,
        `must be a whole number of milliseconds from ${MIN_EVERY_MS} to ${MAX_EVERY_MS}`,
      );
    }
    if (tz !== undefined) throw new RepeatSpecError(`${field}.tz`, 'applies only to cron schedules');
  }
  if (cron !== undefined) {
    if (typeof cron !== 'string' || cron.trim() === '')
      throw new RepeatSpecError(`${field}.cron`, 'must be a cron expression');
    checkCron(cron, `${field}.cron`);
  }
  if (tz !== undefined && (typeof tz !== 'string' || !isTimeZone(tz))) {
    throw new RepeatSpecError(
      `${field}.tz`,
      `"${String(tz)}" is not a known IANA time zone (such as Europe/Berlin or America/New_York)`,
    );
  }
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) {
    throw new RepeatSpecError(`${field}.limit`, 'must be a whole number of fires, at least 1');
  }
  let untilDate: Date | undefined;
  if (until !== undefined) {
    untilDate = typeof until === 'string' ? parseInstant(until) : undefined;
    if (!untilDate)
      throw new RepeatSpecError(
        `${field}.until`,
        'must be an RFC 3339 time with an offset, such as 2030-01-01T00:00:00Z',
      );
  }
  if (missed !== undefined && !(MISSED_POLICIES as readonly unknown[]).includes(missed)) {
    throw new RepeatSpecError(`${field}.missed`, `must be one of ${MISSED_POLICIES.join(', ')}`);
  }
  return Object.freeze({
    ...(every !== undefined ? { every: every as number } : {}),
    ...(cron !== undefined ? { cron: (cron as string).trim() } : {}),
    ...(tz !== undefined ? { tz: tz as string } : {}),
    ...(limit !== undefined ? { limit: limit as number } : {}),
    ...(untilDate ? { until: untilDate } : {}),
    missed: (missed as MissedPolicy | undefined) ?? 'once',
  });
}

/** The JSON form of a spec, as it travels in the `Redrive-Repeat` header and is stored. */
export function repeatSpecToJson(spec: RepeatSpec): Record<string, unknown> {
  return {
    ...(spec.every !== undefined ? { every: spec.every } : {}),
    ...(spec.cron !== undefined ? { cron: spec.cron } : {}),
    ...(spec.tz !== undefined ? { tz: spec.tz } : {}),
    ...(spec.limit !== undefined ? { limit: spec.limit } : {}),
    ...(spec.until ? { until: spec.until.toISOString() } : {}),
    missed: spec.missed,
  };
}
