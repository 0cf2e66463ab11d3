import { collectDefaultMetrics, Registry } from 'prom-client';

/** Creates this process's one Prometheus registry, with Node's default metrics and a service label. */
export function createMetricsRegistry(service: string, opts: { defaults?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (opts.defaults ?? true) collectDefaultMetrics({ register: registry, prefix: 'redrive_' });
  return registry;
}

export { Counter, Gauge, Histogram, Registry } from 'prom-client';
