/** The kinds of failure Redrive tells apart; each has its own retry budget and backoff. */
export const ERROR_CLASSES = [
  'network',
  'timeout',
  'rate_limit',
  'server',
  'database',
  'client',
  'signature',
  'validation',
  'unknown',
  // A job whose runs kept killing their worker (WORKER_MAX_CRASHES); the worker dead-letters
  // it itself, so its policy is never consulted.
  'crash',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** How one class of failure is retried. */
export interface ClassPolicy {
  retryable: boolean;
  /** Retries after the first attempt: a job gets 1 + maxRetries attempts in all. */
  maxRetries: number;
  baseMs: number;
  multiplier: number;
  maxMs: number;
  /** Fraction of the delay taken off at random (0 = none, 1 = anywhere down to 0). */
  jitter: number;
}

const retry = (maxRetries: number, baseMs: number): ClassPolicy => ({
  retryable: true,
  maxRetries,
  baseMs,
  multiplier: 2,
  maxMs: 5 * 60_000,
  jitter: 0.2,
});
const never: ClassPolicy = { retryable: false, maxRetries: 0, baseMs: 0, multiplier: 1, maxMs: 0, jitter: 0 };

/** The defaults of DESIGN.md's error-class table. */
export const DEFAULT_CLASS_POLICIES: Readonly<Record<ErrorClass, ClassPolicy>> = Object.freeze({
  network: retry(5, 2_000),
  timeout: retry(5, 2_000),
  rate_limit: retry(3, 60_000),
  server: retry(5, 5_000),
  database: retry(3, 3_000),
  client: never,
  signature: never,
  validation: never,
  unknown: retry(3, 5_000),
  crash: never,
});

export type ClassOverrides = Partial<Record<ErrorClass, Partial<ClassPolicy>>>;

/** The whole retry configuration: class defaults and per-job-type overrides. */
export interface RetryPolicy {
  classes: Readonly<Record<ErrorClass, ClassPolicy>>;
  types: Readonly<Record<string, ClassOverrides>>;
}

/** Builds a policy from overrides of the defaults; unknown class names are refused. */
export function createRetryPolicy(
  classes: ClassOverrides = {},
  types: Record<string, ClassOverrides> = {},
): RetryPolicy {
  const check = (o: ClassOverrides, where: string) => {
    for (const k of Object.keys(o)) {
      if (!(ERROR_CLASSES as readonly string[]).includes(k)) {
        throw new Error(`${where}: unknown error class "${k}" (known: ${ERROR_CLASSES.join(', ')})`);
      }
    }
  };
  check(classes, 'retry classes');
  for (const [t, o] of Object.entries(types)) check(o, `retry overrides of type ${t}`);
  const merged = Object.fromEntries(
    ERROR_CLASSES.map((c) => [c, { ...DEFAULT_CLASS_POLICIES[c], ...classes[c] }]),
  ) as Record<ErrorClass, ClassPolicy>;
  return { classes: merged, types };
}

/** The policy of one class for one job type. */
export function classPolicy(policy: RetryPolicy, type: string, errorClass: ErrorClass): ClassPolicy {
  return { ...policy.classes[errorClass], ...policy.types[type]?.[errorClass] };
}
