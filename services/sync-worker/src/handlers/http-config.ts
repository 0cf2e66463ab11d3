import { isIP } from 'node:net';
import {
  ConfigError,
  duration,
  list,
  MAX_TIMER_MS,
  oneOf,
  optStr,
  type ConfigProblem,
  type Frozen,
} from '@redrive/config';
import { isJobType } from '@redrive/messaging';
import { z } from 'zod';
import { bareHost, forbiddenRange } from './egress-policy.js';
import {
  ANY_PUBLIC_ORIGIN,
  httpTypeProblems,
  httpUrlProblem,
  originOf,
  originProblem,
  type HttpTypeSettings,
} from './http-routes.js';
import { signingKey } from './webhook-signature.js';

// The http handler's environment: which job types it serves and where each may send
// (HTTP_TYPES, or the shorthands HTTP_TARGET_URL and HTTP_TARGETS for fixed targets), and the
// secret of each receiving origin (HTTP_SIGNING_SECRETS). Configurations that would let a job
// reach or sign for more than the operator named are refused at start, each with the fix.

/** Options of the built-in http handlers (see httpHandlerEnv for what each one means). */
export interface HttpHandlerSettings {
  /** Job type → where its jobs may go. */
  readonly types: Readonly<Record<string, HttpTypeSettings>>;
  /** Deadline of one delivery, DNS and redirects included. */
  readonly timeoutMs: number;
  /** Deadline of one name resolution (default 3 s). */
  readonly dnsTimeoutMs?: number;
  /** DNS servers for hosts only a job named (`ip` or `ip:port`); the system's by default. */
  readonly dnsServers?: readonly string[];
  /** Origin (`https://api.example.com`) → secret, `whsec_<base64>` or raw; used for sends to that origin by types that name it. */
  readonly signingSecrets?: Readonly<Record<string, string>>;
  /** 307/308 redirects followed per delivery (default 3). */
  readonly maxRedirects?: number;
  /** How much of a response body is read at most (default 64 KiB). */
  readonly maxResponseBytes?: number;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function secretProblem(value: string): string | undefined {
  try {
    signingKey(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** An optional http(s) URL without credentials. */
function targetUrl() {
  return optStr().transform((v, ctx) => {
    const problem = v === undefined ? undefined : httpUrlProblem(v);
    if (problem) {
      // The URL itself is not repeated: its path may be the secret of a webhook.
      ctx.addIssue({ code: 'custom', message: `expected an http(s) URL; the value ${problem}` });
      return z.NEVER;
    }
    return v;
  });
}

/** An optional signing secret; the value never appears in a problem. */
function secret() {
  return optStr().transform((v, ctx) => {
    const problem = v === undefined ? undefined : secretProblem(v);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `expected whsec_<base64> or a raw secret: ${problem}` });
      return z.NEVER;
    }
    return v;
  });
}

/**
 * A JSON object. `read` turns one entry's value into the output or names what is wrong with
 * it; `mapKey` normalizes keys. Problems name keys only, never values, since values may be secrets.
 */
function jsonObject<T>(
  describe: string,
  read: (key: string, value: unknown) => { value: T } | { problem: string },
  mapKey: (key: string) => string = (k) => k,
) {
  return optStr().transform((v, ctx) => {
    const out: Record<string, T> = {};
    if (v === undefined) return out;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      parsed = undefined;
    }
    if (!isPlainObject(parsed)) {
      ctx.addIssue({ code: 'custom', message: `expected a JSON object ${describe}` });
      return z.NEVER;
    }
    const problems: string[] = [];
    for (const [key, value] of Object.entries(parsed)) {
      const r = read(key, value);
      if ('problem' in r) problems.push(`"${key}": ${r.problem}`);
      else out[mapKey(key)] = r.value;
    }
    if (problems.length > 0) {
      ctx.addIssue({ code: 'custom', message: `expected a JSON object ${describe}; ${problems.join('; ')}` });
      return z.NEVER;
    }
    return out;
  });
}

/** A JSON object of strings whose entries `check` accepts. */
function jsonRecord(
  describe: string,
  check: (key: string, value: string) => string | undefined,
  mapKey?: (key: string) => string,
) {
  return jsonObject<string>(
    describe,
    (key, value) => {
      const problem = typeof value === 'string' ? check(key, value) : 'is not a string';
      return problem ? { problem } : { value: value as string };
    },
    mapKey,
  );
}

const TYPE_KEYS = ['target', 'origins', 'internalOrigins', 'secretHeaders'] as const;

/** One HTTP_TYPES entry: its shape, then the rule's own problems (which never repeat a URL's path). */
function readTypeRule(type: string, value: unknown): { value: HttpTypeSettings } | { problem: string } {
  if (!isJobType(type)) return { problem: 'is not a job type ([a-z0-9][a-z0-9_-]*)' };
  if (!isPlainObject(value)) return { problem: `expected an object with ${TYPE_KEYS.join(', ')}` };
  const unknown = Object.keys(value).filter((k) => !(TYPE_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) return { problem: `unknown keys ${unknown.join(', ')} (known: ${TYPE_KEYS.join(', ')})` };
  if (value.target !== undefined && typeof value.target !== 'string') return { problem: '"target" is not a string' };
  for (const key of ['origins', 'internalOrigins', 'secretHeaders'] as const) {
    const v = value[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
      return { problem: `"${key}" is not an array of strings` };
    }
  }
  const rule = value as HttpTypeSettings;
  const problems = httpTypeProblems(rule);
  return problems.length > 0 ? { problem: problems.join('; ') } : { value: rule };
}

/**
 * Normalizes one HTTP_ALLOW_HOSTS entry (`host`, `host:port`, `[v6]:port` or a bare IPv6
 * address) to `host` or `host:port` as matched against URLs; undefined when it is none of those.
 */
export function normalizeAllowedHost(entry: string): string | undefined {
  const text = isIP(entry) === 6 ? `[${entry}]` : entry.trim();
  if (text === '' || /[/?#@\s]/.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${text}`);
  } catch {
    return undefined;
  }
  const host = bareHost(url);
  if (host === '') return undefined;
  // URL drops a port equal to the scheme's default; the entry's own text says whether it had one.
  const port = /:(\d+)$/.exec(text)?.[1];
  return port === undefined ? host : `${host}:${Number(port)}`;
}

/** Whether a normalized HTTP_ALLOW_HOSTS entry covers `origin`: same host, and same port if it has one. */
function allowEntryCovers(entry: string, origin: string): boolean {
  const url = new URL(origin);
  const host = bareHost(url);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return entry === host || entry === `${host}:${port}`;
}

/** Environment variables of the built-in http handler; spread into the worker's schema. */
export const httpHandlerEnv = {
  /** auto: on when a type is configured; on: also serve `http` for envelopes to public origins when it is not. */
  HTTP_HANDLER: oneOf(['auto', 'on', 'off'], 'auto').describe(
    '`auto` (on when a type is set), `on` (also serves `http` for envelopes to public origins when it is not configured), `off`',
  ),
  /** The fixed target of type `http` (shorthand for HTTP_TYPES {"http":{"target":…}}). */
  HTTP_TARGET_URL: targetUrl().describe('fixed target of the `http` type'),
  /** Fixed targets of more types: JSON `{ "<type>": "<URL>" }` (shorthand for HTTP_TYPES targets). */
  HTTP_TARGETS: jsonRecord(
    'mapping job types to http(s) URLs, e.g. {"billing-webhook":"https://billing.example.com/hooks"}',
    (type, url) => {
      if (!isJobType(type)) return 'is not a job type ([a-z0-9][a-z0-9_-]*)';
      const problem = httpUrlProblem(url);
      return problem && `the URL ${problem}`;
    },
  ).describe('JSON: fixed targets of more types, `{"<type>":"<url>"}`'),
  /** Job type → `{ target }` or `{ origins, internalOrigins?, secretHeaders? }`. */
  HTTP_TYPES: jsonObject<HttpTypeSettings>(
    'mapping job types to {"target":URL} or {"origins":[origin|"*"],"internalOrigins":[origin],"secretHeaders":[name]}',
    readTypeRule,
  ).describe(
    'JSON: job type → where it may send, `{"target":URL}` or `{"origins":[origin or "*"],"internalOrigins":[origin],"secretHeaders":[name]}` (see the built-in `http` handler)',
  ),
  /** Deadline of one delivery: DNS, connecting, redirects and reading the answer. */
  HTTP_TIMEOUT: duration('10s', { min: 10, max: MAX_TIMER_MS }).describe(
    'deadline of one delivery (DNS, connect, redirects, answer)',
  ),
  /** Deadline of one name resolution, within HTTP_TIMEOUT. */
  HTTP_DNS_TIMEOUT: duration('3s', { min: 10, max: MAX_TIMER_MS }).describe(
    'deadline of one name resolution, within `HTTP_TIMEOUT`',
  ),
  /** Legacy: one secret for the fixed targets' origins; refused while a type takes envelope URLs. */
  HTTP_SIGNING_SECRET: secret().describe(
    "older: one secret for the fixed targets' origins only; refused while a type takes envelopes",
  ),
  /** Per-origin secrets: JSON `{ "https://api.example.com": "whsec_…" }`. */
  HTTP_SIGNING_SECRETS: jsonRecord(
    'mapping origins (https://host[:port]) to secrets',
    (origin, value) => originProblem(origin) ?? secretProblem(value),
    originOf,
  ).describe('JSON: secret per origin, `{"https://api.example.com":"whsec_…"}`'),
  /** Legacy: hosts (or host:port) whose named origins may resolve to internal addresses. */
  HTTP_ALLOW_HOSTS: list([])
    .transform((items, ctx) => {
      const bad = items.filter((h) => normalizeAllowedHost(h) === undefined);
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `expected comma-separated host or host:port entries; bad: ${bad.join(', ')}`,
        });
        return z.NEVER;
      }
      return items;
    })
    .describe('older: hosts (`host` or `host:port`) whose named origins may have internal addresses'),
};

export type HttpHandlerEnv = Frozen<{ [K in keyof typeof httpHandlerEnv]: z.output<(typeof httpHandlerEnv)[K]> }>;

interface TypeEntry {
  rule: HttpTypeSettings;
  /** The variable that configured the type, for problems. */
  variable: string;
}

/** Every configured type with the variable it came from; HTTP_TYPES, then the shorthands. */
function configuredTypes(env: Readonly<HttpHandlerEnv>, problems: ConfigProblem[]): Map<string, TypeEntry> {
  const types = new Map<string, TypeEntry>();
  for (const [type, rule] of Object.entries(env.HTTP_TYPES)) types.set(type, { rule, variable: 'HTTP_TYPES' });
  for (const [type, target] of Object.entries(env.HTTP_TARGETS)) {
    if (types.has(type)) {
      problems.push({ variable: 'HTTP_TARGETS', problem: `"${type}" is in HTTP_TYPES too; configure each type once` });
    } else types.set(type, { rule: { target }, variable: 'HTTP_TARGETS' });
  }
  const target = env.HTTP_TARGET_URL;
  if (target !== undefined) {
    const http = types.get('http');
    if (http?.variable === 'HTTP_TARGETS' && http.rule.target !== target) {
      problems.push({
        variable: 'HTTP_TARGETS',
        problem: 'names a target for "http" that differs from HTTP_TARGET_URL; set one of them',
      });
    } else if (http?.variable === 'HTTP_TYPES') {
      problems.push({ variable: 'HTTP_TARGET_URL', problem: 'type "http" is in HTTP_TYPES too; configure it once' });
    } else types.set('http', { rule: { target }, variable: 'HTTP_TARGET_URL' });
  }
  return types;
}

/** The origins a type names: its target's, or its listed origins and internal origins. */
function namedOrigins(rule: HttpTypeSettings): string[] {
  if (rule.target !== undefined) return [originOf(rule.target)];
  return [...(rule.origins ?? []).filter((o) => o !== ANY_PUBLIC_ORIGIN), ...(rule.internalOrigins ?? [])].map(
    originOf,
  );
}

/**
 * HTTP_ALLOW_HOSTS, kept where it is safe: an entry marks as internal the origins that types
 * name on that host (and port). An entry that matches no named origin would let job URLs reach
 * that host on any port, so it is refused.
 */
function applyAllowHosts(env: Readonly<HttpHandlerEnv>, types: Map<string, TypeEntry>, problems: ConfigProblem[]) {
  for (const raw of env.HTTP_ALLOW_HOSTS) {
    const entry = normalizeAllowedHost(raw)!;
    let matched = false;
    for (const [, t] of types) {
      const covered = namedOrigins(t.rule).filter((o) => allowEntryCovers(entry, o));
      if (covered.length === 0) continue;
      matched = true;
      t.rule = { ...t.rule, internalOrigins: [...new Set([...(t.rule.internalOrigins ?? []), ...covered])] };
    }
    if (!matched) {
      problems.push({
        variable: 'HTTP_ALLOW_HOSTS',
        problem:
          `"${raw}" matches no target or origin a job type names, so it would let any job URL reach that host ` +
          '(on any port). Name internal origins per type instead: HTTP_TYPES ' +
          '{"<type>":{"internalOrigins":["http://host:port"]}}',
      });
    }
  }
}

/** A named origin written as a forbidden IP would fail every job at send time: say so at start-up. */
function literalOriginProblems(types: Map<string, TypeEntry>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [type, { rule, variable }] of types) {
    const internal = new Set((rule.internalOrigins ?? []).map(originOf));
    for (const origin of namedOrigins(rule)) {
      const url = new URL(origin);
      const host = bareHost(url);
      const range = isIP(host) ? forbiddenRange(host) : undefined;
      if (range && !internal.has(origin)) {
        problems.push({
          variable,
          problem:
            `${url.host} is a ${range} address, which the http handler refuses unless type "${type}" lists ` +
            `${origin} in "internalOrigins" (HTTP_TYPES)`,
        });
      }
    }
  }
  return problems;
}

/**
 * Secrets belong to origins, and sign only for types that name their origin. A secret for an
 * origin no type names would sign nothing (in older versions it signed any envelope to it);
 * the one default secret is taken as the secret of the fixed targets' origins, and refused
 * when a type takes envelope URLs, which could otherwise have it sign for any origin.
 */
function signingSecretsOf(
  env: Readonly<HttpHandlerEnv>,
  types: Map<string, TypeEntry>,
  problems: ConfigProblem[],
): Record<string, string> {
  const secrets: Record<string, string> = { ...env.HTTP_SIGNING_SECRETS };
  const named = new Set([...types.values()].flatMap((t) => namedOrigins(t.rule)));
  for (const origin of Object.keys(secrets)) {
    if (!named.has(origin)) {
      problems.push({
        variable: 'HTTP_SIGNING_SECRETS',
        problem:
          `${origin} is not an origin any job type names (a target's origin, or an entry of "origins" or ` +
          `"internalOrigins" in HTTP_TYPES), so its secret would sign nothing: a secret signs only sends to ` +
          'its own origin by the types that name it',
      });
    }
  }
  const defaultSecret = env.HTTP_SIGNING_SECRET;
  if (defaultSecret === undefined) return secrets;
  const envelopeTypes = [...types].filter(([, t]) => t.rule.target === undefined).map(([type]) => type);
  if (envelopeTypes.length > 0) {
    problems.push({
      variable: 'HTTP_SIGNING_SECRET',
      problem:
        `one secret for every target cannot be used while job types take envelope URLs ` +
        `(${envelopeTypes.map((t) => `"${t}"`).join(', ')}): whoever submits a job could have it sign ` +
        'for a URL they choose. Give each receiving origin its own secret in HTTP_SIGNING_SECRETS ' +
        '({"https://receiver.example.com":"whsec_…"}) and name that origin in the type\'s "origins"',
    });
    return secrets;
  }
  for (const t of types.values()) secrets[originOf(t.rule.target!)] ??= defaultSecret;
  return secrets;
}

/**
 * The http handler's settings described by parsed HTTP_* variables, or undefined when the
 * handler is off. Throws ConfigError for a configuration that is unsafe or would fail every job.
 */
export function httpHandlerSettingsFrom(env: Readonly<HttpHandlerEnv>): HttpHandlerSettings | undefined {
  const problems: ConfigProblem[] = [];
  const types = configuredTypes(env, problems);
  if (env.HTTP_HANDLER === 'off' || (env.HTTP_HANDLER === 'auto' && types.size === 0)) return undefined;
  // HTTP_HANDLER=on has always served `http` for envelope jobs: to public origins only, unsigned.
  if (env.HTTP_HANDLER === 'on' && !types.has('http')) {
    types.set('http', { rule: { origins: [ANY_PUBLIC_ORIGIN] }, variable: 'HTTP_HANDLER' });
  }
  applyAllowHosts(env, types, problems);
  problems.push(...literalOriginProblems(types));
  const signingSecrets = signingSecretsOf(env, types, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    types: Object.fromEntries([...types].map(([type, t]) => [type, t.rule])),
    timeoutMs: env.HTTP_TIMEOUT,
    dnsTimeoutMs: env.HTTP_DNS_TIMEOUT,
    signingSecrets,
  };
}
