import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { connectNats, type NatsSettings } from './connection.js';
import { ensureStreams, type ProvisionResult } from './provision.js';
import { Topology, type TopologyOptions } from './topology.js';

/** Logs the streams and consumers that provisioning created or changed. */
export function logProvisioned(logger: Logger, results: readonly ProvisionResult[]): void {
  for (const r of results)
    if (r.action !== 'unchanged')
      logger.info({ [r.kind]: r.name, action: r.action, changes: r.changes }, `${r.kind} provisioned`);
}

/**
 * What every service does first: connect to NATS and provision every Redrive stream (created,
 * or updated in place), logging what changed. The caller owns the connection (and drains it at
 * shutdown); if provisioning fails, it is closed here.
 */
export async function connectAndProvision(
  settings: NatsSettings,
  name: string,
  topologyOptions: Partial<TopologyOptions>,
  logger: Logger,
) {
  const nc = await connectNats(settings, name, logger);
  try {
    const jsm = await jetstreamManager(nc);
    const topology = new Topology(topologyOptions);
    logProvisioned(logger, await ensureStreams(jsm, topology.streamConfigs()));
    return { nc, js: jetstream(nc), jsm, topology };
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
}
