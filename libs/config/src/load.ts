import { redactUrlCredentials } from '@redrive/messaging';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { EXAMPLE_SECRET_PROBLEM, exampleSecretPaths } from './secrets.js';

/** A deep-frozen value: configuration never changes after start-up. */
export type Frozen<T> = T extends (infer U)[]
  ? readonly Frozen<U>[]
  : T extends object
    ? { readonly [K in keyof T]: Frozen<T[K]> }
    : T;

export type Env = Readonly<Record<string, string | undefined>>;

function deepFreeze<T>(value: T): Frozen<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value as Frozen<T>;
}

/**
 * Parses `env` with a schema whose keys are environment variable names; returns the frozen
 * result or throws one ConfigError listing every bad variable with what it expected.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: Env = process.env): Frozen<z.output<S>> {
  const result = schema.safeParse(env);
  const problems: ConfigProblem[] = result.success
    ? []
    : result.error.issues.map((issue) => ({
        variable: issue.path.map(String).join('.') || '(environment)',
        problem: issue.message,
      }));
  problems.push(...exampleSecretProblems(schema, env));
  if (problems.length > 0 || !result.success) {
    const scrub = scrubber(schema, env);
    throw new ConfigError(problems.map((p) => ({ variable: p.variable, problem: scrub(p.problem) })));
  }
  return deepFreeze(result.data);
}

function isSecretField(field: unknown): boolean {
  const meta = (field as { meta?: () => Record<string, unknown> | undefined }).meta?.();
  return meta?.secret === true;
}

/**
 * Example secrets inside JSON variables: a `token`, `key`, `secret` or `password` whose value
 * is a placeholder (`change-me-operator-token`, `<at least 16 characters>`). Checked for every
 * variable of the schema, so a service's own JSON credentials (DLQ_TOKENS, INTAKE_API_KEYS)
 * cannot start with a value copied from an example, whatever the service's schema says.
 */
function exampleSecretProblems(schema: z.ZodObject, env: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const variable of Object.keys(schema.shape)) {
    const text = env[variable]?.trim();
    if (!text || !(text.startsWith('[') || text.startsWith('{'))) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue; // the field reports it
    }
    for (const path of exampleSecretPaths(parsed)) {
      problems.push({ variable, problem: `JSON at ${path.join('.')}: ${EXAMPLE_SECRET_PROBLEM}` });
    }
  }
  return problems;
}

/**
 * What keeps secrets out of a problem's text: the user and password of any URL in it, and the
 * value of every variable the schema marks secret, wherever a message might have quoted it.
 */
function scrubber(schema: z.ZodObject, env: Env): (problem: string) => string {
  const secrets = Object.entries(schema.shape)
    .filter(([, field]) => isSecretField(field))
    .map(([variable]) => env[variable]?.trim())
    .filter((v): v is string => v !== undefined && v.length >= 4);
  return (problem) => secrets.reduce((text, s) => text.split(s).join('***'), redactUrlCredentials(problem));
}

/** Freezes a configuration object built by a service from parsed variables. */
export function freezeConfig<T>(config: T): Frozen<T> {
  return deepFreeze(config);
}
