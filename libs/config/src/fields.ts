import { redactUrlCredentials } from '@redrive/messaging';
import { z } from 'zod';
import { describePosition, jsonSyntaxError } from './json-syntax.js';
import { secretProblem } from './secrets.js';

// Field builders for environment variables. Every builder takes the raw string (or undefined
// when unset) and either yields a typed value or an issue whose message says what was
// expected, so that ConfigError can name the variable and the expected form.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1_000,
  kib: 1_024,
  mb: 1_000_000,
  mib: 1_048_576,
  gb: 1_000_000_000,
  gib: 1_073_741_824,
};

/** Parses "250ms", "30s", "5m", "2h", "7d" or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}

/** Parses "512KiB", "1MiB", "10GB" or a bare number of bytes. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = BYTE_UNITS[(m[2] ?? 'b').toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}

function optionalString() {
  return z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
}

/** A string; required unless a default is given. */
export function str(def?: string) {
  return optionalString().transform((v, ctx) => {
    const value = v ?? def;
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: 'is required (a non-empty string)' });
      return z.NEVER;
    }
    return value;
  });
}

/** An optional string: undefined when unset or blank. */
export function optStr() {
  return optionalString();
}

/** A string that must be one of `values`. */
export function oneOf<const T extends readonly string[]>(values: T, def: T[number]) {
  return optionalString().transform((v, ctx) => {
    const value = v ?? def;
    if (!values.includes(value)) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${values.join(', ')}, got "${value}"` });
      return z.NEVER;
    }
    return value as T[number];
  });
}

/** An integer within [min, max]. */
export function int(def: number, opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  return optionalString().transform((v, ctx) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected an integer from ${min} to ${max}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });
}

/** A TCP port; 0 asks the OS for a free one. */
export function port(def: number) {
  return int(def, { min: 0, max: 65_535 });
}

/** A boolean: true/false, 1/0, yes/no, on/off. */
export function bool(def: boolean) {
  return optionalString().transform((v, ctx) => {
    if (v === undefined) return def;
    const s = v.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: `expected true or false, got "${v}"` });
    return z.NEVER;
  });
}

/** The longest delay a Node.js timer can wait; longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A duration in milliseconds, written as 250ms, 30s, 5m, 2h, 7d or bare milliseconds. */
export function duration(def: number | string, opts: { min?: number; max?: number } = {}) {
  const fallback = typeof def === 'number' ? def : (parseDuration(def) ?? 0);
  const field = optionalString().transform((v, ctx) => {
    if (v === undefined) return fallback;
    const ms = parseDuration(v);
    if (ms === undefined || ms < (opts.min ?? 0) || ms > (opts.max ?? Number.MAX_SAFE_INTEGER)) {
      const bounds = [opts.min ? `at least ${opts.min} ms` : '', opts.max ? `at most ${opts.max} ms` : ''].filter(
        Boolean,
      );
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as 500ms, 30s, 5m, 2h or 7d${bounds.length ? ` (${bounds.join(', ')})` : ''}, got "${v}"`,
      });
      return z.NEVER;
    }
    return ms;
  });
  // The unit lets the configuration reference (scripts/config-docs.ts) print a default as written.
  return field.meta({ unit: 'duration' });
}

/** A size in bytes, written as 1MiB, 512KiB, 10GB or bare bytes; -1 means unlimited where allowed. */
export function bytes(def: number, opts: { allowUnlimited?: boolean } = {}) {
  const field = optionalString().transform((v, ctx) => {
    if (v === undefined) return def;
    if (opts.allowUnlimited && v === '-1') return -1;
    const n = parseBytes(v);
    if (n === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size such as 1MiB, 512KiB or 1048576${opts.allowUnlimited ? ' (or -1 for unlimited)' : ''}, got "${v}"`,
      });
      return z.NEVER;
    }
    return n;
  });
  return field.meta({ unit: 'bytes' });
}

/** A comma-separated list of non-empty strings, each optionally checked against `pattern`. */
export function list(def: readonly string[] = [], pattern?: { re: RegExp; describe: string }) {
  return optionalString().transform((v, ctx) => {
    if (v === undefined) return [...def];
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (pattern) {
      const bad = items.filter((s) => !pattern.re.test(s));
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a comma-separated list of ${pattern.describe}; bad: ${bad.join(', ')}`,
        });
        return z.NEVER;
      }
    }
    return items;
  });
}

/** A comma-separated list of URLs with one of the given schemes; a bare host:port gets `defaultScheme`. */
export function urlList(def: readonly string[], schemes: readonly string[], defaultScheme?: string) {
  return list(def).transform((raw, ctx) => {
    const items = raw.map((item) => (defaultScheme && !item.includes('://') ? `${defaultScheme}://${item}` : item));
    for (const item of items) {
      let ok = false;
      try {
        ok = schemes.includes(new URL(item).protocol.replace(/:$/, ''));
      } catch {
        ok = false;
      }
      if (!ok) {
        // A URL's user and password are not repeated (nats://alice:…@host would show the password).
        ctx.addIssue({
          code: 'custom',
          message: `expected comma-separated URLs (${schemes.join(', ')}), bad: "${redactUrlCredentials(item)}"`,
        });
        return z.NEVER;
      }
    }
    return items;
  });
}

/** An optional http(s) URL. */
export function optUrl() {
  return optionalString().transform((v, ctx) => {
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (u.protocol === 'http:' || u.protocol === 'https:') return v;
    } catch {
      // fall through to the issue
    }
    ctx.addIssue({ code: 'custom', message: `expected an http(s) URL, got "${redactUrlCredentials(v)}"` });
    return z.NEVER;
  });
}

/**
 * A JSON value checked by `schema`; the issue names the JSON path that is wrong. A value that
 * is not JSON is reported by position and what was expected there, never quoted: JSON
 * variables hold tokens and keys (DLQ_TOKENS, INTAKE_API_KEYS), and JSON.parse's own message
 * repeats the text around the mistake.
 */
export function json<S extends z.ZodType>(schema: S, def: z.output<S>) {
  return optionalString().transform((v, ctx): z.output<S> => {
    if (v === undefined) return def;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      const stop = jsonSyntaxError(v);
      ctx.addIssue({
        code: 'custom',
        message: stop
          ? `expected JSON; it stops being JSON ${describePosition(v, stop.at)}, where ${stop.expected} was expected (the value is not shown: it may hold secrets)`
          : 'expected JSON (the value is not shown: it may hold secrets)',
      });
      return z.NEVER;
    }
    const r = schema.safeParse(parsed);
    if (!r.success) {
      const first = r.error.issues[0]!;
      ctx.addIssue({ code: 'custom', message: `JSON at ${first.path.join('.') || '(root)'}: ${first.message}` });
      return z.NEVER;
    }
    return r.data;
  });
}

/**
 * An optional secret (a password, a token): refused when it is an example value from
 * documentation or a compose file (`change-me-…`, `<…>`, `admin`…) or shorter than
 * `minLength` (16 unless given; 0 checks no length). Its value never appears in a problem,
 * and parseEnv keeps it out of every other variable's problems too.
 */
export function secret(opts: { minLength?: number } = {}) {
  const minLength = opts.minLength ?? 16;
  const field = optionalString().transform((v, ctx) => {
    const problem = v === undefined ? undefined : secretProblem(v, minLength);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `${problem} (the value is not shown)` });
      return z.NEVER;
    }
    return v;
  });
  return field.meta({ secret: true });
}
