import { z } from 'zod';

// Secrets in the environment: values that must never appear in an error message, and that must
// not be an example copied from documentation or a compose file. A deployment that starts with
// `change-me-operator-token` has an admin API anyone who read the README can use.

/** Keys of JSON objects whose string values are credentials (DLQ_TOKENS' `token`, INTAKE_API_KEYS' `key`). */
export const SECRET_KEY = /token|key|secret|password|passwd/i;

/** Values shipped as examples in Redrive's files, and the usual placeholders. */
const EXAMPLE_VALUES = new Set([
  'change-me-operator-token',
  'redrive',
  'admin',
  'password',
  'secret',
  'token',
  'example',
  'placeholder',
]);
const EXAMPLE_PATTERNS = [
  /change[-_ .]?me/i, // change-me, changeme, CHANGE_ME, please-change-me-…
  /^<.*>$/s, // a template's "<at least 16 characters>", "<token>"
  /^(?:\.{3}|…)$/, // "…" as in the docs' examples
  /^(?:x+|\*+)$/i, // xxxxxxxx, ********
  /your[-_ ]?(?:own[-_ ]?)?(?:secret|token|key|password)/i,
];

/** True for a value that is an example or placeholder, never a secret of one's own. */
export function isExampleSecret(value: string): boolean {
  const v = value.trim();
  return EXAMPLE_VALUES.has(v.toLowerCase()) || EXAMPLE_PATTERNS.some((re) => re.test(v));
}

export const EXAMPLE_SECRET_PROBLEM =
  'is an example value (from documentation or a compose file), not a secret; set one of your own';

/** The problem with `value` as a secret of at least `minLength` characters, without quoting it. */
export function secretProblem(value: string, minLength: number): string | undefined {
  if (isExampleSecret(value)) return EXAMPLE_SECRET_PROBLEM;
  if (value.length < minLength) return `is too short: a secret needs at least ${minLength} characters`;
  return undefined;
}

/**
 * A secret inside a JSON variable's schema, e.g. `token: secretText()` in DLQ_TOKENS: a string
 * of at least `minLength` characters that is not an example value. Its messages never quote it.
 */
export function secretText(opts: { minLength?: number } = {}) {
  const minLength = opts.minLength ?? 16;
  return z.string().superRefine((value, ctx) => {
    const problem = secretProblem(value, minLength);
    if (problem) ctx.addIssue({ code: 'custom', message: `a secret that ${problem}` });
  });
}

/**
 * Where a JSON value holds an example secret: the paths of string values under keys that name
 * a credential (`token`, `key`, `secret`, `password`, …). parseEnv refuses them in any variable,
 * so DLQ_TOKENS and INTAKE_API_KEYS are checked however their services declare them.
 */
export function exampleSecretPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => exampleSecretPaths(v, [...path, i]));
  if (value === null || typeof value !== 'object') return [];
  const found: (string | number)[][] = [];
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') {
      if (SECRET_KEY.test(k) && isExampleSecret(v)) found.push([...path, k]);
    } else found.push(...exampleSecretPaths(v, [...path, k]));
  }
  return found;
}
