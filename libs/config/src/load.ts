import type { z } from 'zod';
import { ConfigError } from './errors.js';

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
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        variable: issue.path.map(String).join('.') || '(environment)',
        problem: issue.message,
      })),
    );
  }
  return deepFreeze(result.data);
}

/** Freezes a configuration object built by a service from parsed variables. */
export function freezeConfig<T>(config: T): Frozen<T> {
  return deepFreeze(config);
}
