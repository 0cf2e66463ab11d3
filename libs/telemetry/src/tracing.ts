import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

export interface Telemetry {
  /** True when spans are exported (an OTLP endpoint or exporter was configured). */
  readonly exporting: boolean;
  /** Flushes and stops exporting; safe to call more than once. */
  shutdown(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Whether the standard OTEL_* variables ask for traces to be exported. */
export function tracesConfigured(env: Env): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === 'none') return false;
  return Boolean(exporter || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts OpenTelemetry for this process from the standard OTEL_* variables; off unless they
 * configure an exporter. Trace context always propagates (W3C), exported or not, so a job's
 * trace id survives every hop even when nobody collects the spans.
 */
export async function startTelemetry(opts: { serviceName: string; env?: NodeJS.ProcessEnv }): Promise<Telemetry> {
  const env = opts.env ?? process.env;
  if (!tracesConfigured(env)) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    return {
      exporting: false,
      shutdown: async () => {
        context.disable();
        propagation.disable();
      },
    };
  }
  // Metrics are served by prom-client on /metrics and logs go to stdout: unless the operator
  // asks otherwise, the SDK exports traces only.
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  env.OTEL_SERVICE_NAME ??= opts.serviceName;
  // Loaded only when tracing is on: the SDK and its exporters cost tens of MB of memory.
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env.OTEL_SERVICE_NAME });
  sdk.start();
  let stopped: Promise<void> | undefined;
  return {
    exporting: true,
    shutdown: () => (stopped ??= sdk.shutdown().catch(() => undefined)),
  };
}
