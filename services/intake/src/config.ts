import {
  bool,
  bytes,
  ConfigError,
  duration,
  freezeConfig,
  handoffEnv,
  int,
  optStr,
  parseEnv,
  port,
  str,
  type Env,
  serviceEnv,
  serviceSettingsFrom,
} from '@redrive/config';
import { z } from 'zod';
import { SCOPES, type ApiKey } from './auth.js';

const keyEntry = z
  .object({
    name: z.string().min(1).max(100),
    key: z.string().min(16, { message: 'a key needs at least 16 characters' }).regex(/^\S+$/, {
      message: 'a key may not contain spaces',
    }),
    scopes: z.array(z.enum(SCOPES)).min(1, { message: 'list at least one scope' }),
  })
  .strict();

/**
 * INTAKE_API_KEYS: a JSON list of keys with scopes,
 * `[{"name":"billing","key":"…","scopes":["submit","schedules:read"]}]`, or (the older form)
 * comma-separated keys, each with every scope. Messages never repeat the value: it holds keys.
 */
function apiKeys() {
  return optStr().transform((v, ctx): ApiKey[] => {
    if (v === undefined) return [];
    if (!v.startsWith('[')) {
      return v
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '')
        .map((key, i) => ({ name: `key #${i + 1}`, key, scopes: [...SCOPES] }));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not valid JSON (the value is not shown: it holds keys)' });
      return z.NEVER;
    }
    const r = z.array(keyEntry).safeParse(parsed);
    if (!r.success) {
      const first = r.error.issues[0]!;
      ctx.addIssue({ code: 'custom', message: `JSON at ${first.path.join('.') || '(root)'}: ${first.message}` });
      return z.NEVER;
    }
    const names = new Set<string>();
    const keys = new Set<string>();
    for (const [i, k] of r.data.entries()) {
      if (names.has(k.name)) ctx.addIssue({ code: 'custom', message: `JSON at ${i}.name: "${k.name}" is used twice` });
      if (keys.has(k.key)) ctx.addIssue({ code: 'custom', message: `JSON at ${i}.key: the same key is listed twice` });
      names.add(k.name);
      keys.add(k.key);
    }
    return r.data;
  });
}

export const intakeEnv = z.object({
  ...serviceEnv,
  INTAKE_HOST: str('0.0.0.0').describe('address the API listens on'),
  INTAKE_PORT: port(8080).describe('port the API listens on'),
  /** Producer API keys and their scopes (see apiKeys); required unless INTAKE_ALLOW_ANONYMOUS. */
  INTAKE_API_KEYS: apiKeys().describe(
    'producer keys with scopes, JSON `[{"name":"billing","key":"<at least 16 characters>","scopes":["submit"]}]` (scopes `submit`, `schedules:read`, `schedules:cancel`), or comma-separated keys, each with every scope; required unless `INTAKE_ALLOW_ANONYMOUS`',
  ),
  /** Lets anyone submit jobs, read and cancel schedules, with no key: local development only. */
  INTAKE_ALLOW_ANONYMOUS: bool(false).describe(
    '`true`: no keys, anyone may use every route (local development only); refused while `INTAKE_API_KEYS` lists keys',
  ),
  INTAKE_MAX_PAYLOAD: bytes(1_048_576).describe(
    "largest encoded payload of one job; never more than the server's `max_payload` less 16 KiB",
  ),
  INTAKE_MAX_BATCH: int(500, { min: 1, max: 10_000 }).describe('most jobs in one batch (1–10,000)'),
  INTAKE_MAX_BATCH_BYTES: bytes(16 * 1_048_576).describe('largest batch request body'),
  INTAKE_PUBLISH_TIMEOUT: duration('5s', { min: 100 }).describe('how long to wait for a PubAck before answering 503'),
  /** How long the list of job types that have a worker is trusted before it is read again. */
  INTAKE_ROUTES_TTL: duration('5s').describe('how long the list of served job types is cached (a miss re-reads it)'),
  /** Waits longer than this go to the retry-scheduler (shared with the other services: libs/config). */
  ...handoffEnv,
  /** How long to wait for the retry-scheduler to answer /v1/schedules requests. */
  INTAKE_SCHEDULER_TIMEOUT: duration('5s', { min: 100 }).describe(
    'how long `/v1/schedules` waits for the scheduler before answering 503',
  ),
});

export function loadIntakeConfig(env: Env = process.env) {
  const e = parseEnv(intakeEnv, env);
  if (e.INTAKE_API_KEYS.length === 0 && !e.INTAKE_ALLOW_ANONYMOUS) {
    throw new ConfigError([
      {
        variable: 'INTAKE_API_KEYS',
        problem:
          'is not set, so anyone could submit jobs and read or cancel schedules. Set producer keys, e.g. ' +
          'INTAKE_API_KEYS=\'[{"name":"billing","key":"<at least 16 characters>","scopes":["submit"]}]\' ' +
          '(scopes: submit, schedules:read, schedules:cancel), or, for local development only, ' +
          'INTAKE_ALLOW_ANONYMOUS=true',
      },
    ]);
  }
  if (e.INTAKE_API_KEYS.length > 0 && e.INTAKE_ALLOW_ANONYMOUS) {
    throw new ConfigError([
      {
        variable: 'INTAKE_ALLOW_ANONYMOUS',
        problem: 'is true while INTAKE_API_KEYS lists keys; set one or the other',
      },
    ]);
  }
  return freezeConfig({
    ...serviceSettingsFrom(e),
    http: { host: e.INTAKE_HOST, port: e.INTAKE_PORT },
    apiKeys: e.INTAKE_API_KEYS,
    allowAnonymous: e.INTAKE_ALLOW_ANONYMOUS,
    maxPayloadBytes: e.INTAKE_MAX_PAYLOAD,
    maxBatch: e.INTAKE_MAX_BATCH,
    maxBatchBytes: e.INTAKE_MAX_BATCH_BYTES,
    publishTimeoutMs: e.INTAKE_PUBLISH_TIMEOUT,
    routesTtlMs: e.INTAKE_ROUTES_TTL,
    handoffThresholdMs: e.RETRY_HANDOFF_THRESHOLD,
    schedulerTimeoutMs: e.INTAKE_SCHEDULER_TIMEOUT,
  });
}

export type IntakeConfig = ReturnType<typeof loadIntakeConfig>;
