import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * Creates this process's one Prometheus registry, with Node's default metrics under their
 * standard names (`process_*`, `nodejs_*`, as stock Node dashboards expect) and a service label.
 */
export function createMetricsRegistry(service: string, opts: { defaults?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (opts.defaults ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

type LabelValues = Readonly<Record<string, readonly string[]>>;

/** Every combination of the given label values: `{a: [1, 2], b: [x]}` → `[{a: 1, b: x}, {a: 2, b: x}]`. */
export function labelCombinations(values: LabelValues): Record<string, string>[] {
  let combos: Record<string, string>[] = [{}];
  for (const [name, options] of Object.entries(values))
    combos = combos.flatMap((c) => options.map((v) => ({ ...c, [name]: v })));
  return combos;
}

/**
 * Creates the series of every known label combination at zero, so the first increment of a
 * labelled counter (or observation of a histogram) is a change `rate()` and `increase()` can see.
 */
export function zeroSeries(metric: Counter | Histogram, values: LabelValues): void {
  for (const labels of labelCombinations(values)) {
    if (metric instanceof Histogram) metric.zero(labels);
    else metric.inc(labels, 0);
  }
}

/**
 * Wraps an expensive read (JetStream consumer state, a grouped Postgres count) for gauges that
 * are computed on scrape: the result is reused for `maxAgeMs`, and concurrent scrapes share one
 * read, so Prometheus and a second scraper together cost one read per `maxAgeMs`.
 */
export function cachedRead<T>(read: () => Promise<T>, maxAgeMs: number, now: () => number = Date.now) {
  let value: { at: number; data: T } | undefined;
  let reading: Promise<T> | undefined;
  return (): Promise<T> => {
    if (value && now() - value.at < maxAgeMs) return Promise.resolve(value.data);
    return (reading ??= read()
      .then((data) => {
        value = { at: now(), data };
        return data;
      })
      .finally(() => (reading = undefined)));
  };
}

export { Counter, Gauge, Histogram, Registry } from 'prom-client';
