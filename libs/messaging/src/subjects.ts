/** Priority lanes, highest first: free worker capacity goes to them in this order. */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** A job type is one subject token: lower-case letters, digits, "_" and "-", 1–64 long. */
export const JOB_TYPE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value);
}

export function isJobType(value: unknown): value is string {
  return typeof value === 'string' && JOB_TYPE_PATTERN.test(value);
}

/** NATS subject matching with `*` (one token) and `>` (the rest) wildcards in `filter`. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === '>') return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return f.length === s.length;
}
