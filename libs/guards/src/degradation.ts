import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';

/** The Redis-backed features, as they appear in the `feature` label. */
export type Feature = 'completed' | 'rate_limit' | 'concurrency' | 'runs';
export const FEATURES: readonly Feature[] = ['completed', 'rate_limit', 'concurrency', 'runs'];

export const DEGRADED_METRIC = 'redrive_redis_degraded_total';
/** At most one warn line per feature in this window; the counter still counts every failure. */
export const DEGRADED_LOG_INTERVAL_MS = 10_000;

/** Raised when a Redis call outlives the guard's own deadline (a client that queues instead of failing fast). */
export class GuardTimeoutError extends Error {
  override readonly name = 'GuardTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
  }
}

interface FeatureState {
  degraded: boolean;
  lastWarnAt: number | undefined;
  suppressed: number;
}

/**
 * Runs Redis calls for the guards and turns every failure into the feature's fail-open answer,
 * counting it and logging it without flooding the log.
 */
/** The guards' counter on `registry`, every series from zero (several guards may share one registry). */
export function degradedCounter(registry: Registry): Counter<'feature'> {
  const existing = registry.getSingleMetric(DEGRADED_METRIC) as Counter<'feature'> | undefined;
  if (existing) return existing;
  const counter = new Counter({
    name: DEGRADED_METRIC,
    help: 'Redis calls that failed, so the feature failed open (jobs ran without the guard)',
    labelNames: ['feature'],
    registers: [registry],
  });
  // Export every series from the start so rate() sees the first increment.
  for (const feature of FEATURES) counter.inc({ feature }, 0);
  return counter;
}

export class Degradation {
  private readonly counter: Counter<'feature'>;
  private readonly states = new Map<Feature, FeatureState>();

  constructor(
    private readonly logger: Logger,
    registry: Registry,
    private readonly now: () => number,
    private readonly timeoutMs: number,
  ) {
    this.counter = degradedCounter(registry);
    for (const feature of FEATURES) this.states.set(feature, { degraded: false, lastWarnAt: undefined, suppressed: 0 });
  }

  /** Runs `call`; on any failure or after the deadline answers `fallback` instead. Never rejects. */
  async run<T>(feature: Feature, op: string, call: () => Promise<T>, fallback: T): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new GuardTimeoutError(this.timeoutMs)), this.timeoutMs);
      });
      const value = await Promise.race([call(), deadline]);
      this.recovered(feature);
      return value;
    } catch (err) {
      this.degraded(feature, op, err);
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  private degraded(feature: Feature, op: string, err: unknown): void {
    this.counter.inc({ feature });
    const s = this.states.get(feature)!;
    s.degraded = true;
    const t = this.now();
    if (s.lastWarnAt !== undefined && t - s.lastWarnAt < DEGRADED_LOG_INTERVAL_MS) {
      s.suppressed++;
      return;
    }
    this.logger.warn(
      { feature, op, err, suppressed: s.suppressed },
      `Redis unavailable for ${feature}: failing open (the job runs without this guard)`,
    );
    s.lastWarnAt = t;
    s.suppressed = 0;
  }

  private recovered(feature: Feature): void {
    const s = this.states.get(feature)!;
    if (!s.degraded) return;
    s.degraded = false;
    this.logger.info({ feature, suppressed: s.suppressed }, `Redis available again for ${feature}`);
    s.suppressed = 0;
  }
}
