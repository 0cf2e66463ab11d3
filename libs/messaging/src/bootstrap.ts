import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { connectNats, type NatsSettings } from './connection.js';
import { natsInboxPrefix, type ServiceRole } from './permissions.js';
import { ensureStreams, type ProvisionResult } from './provision.js';
import { Topology, type TopologyOptions } from './topology.js';

/** Logs the streams and consumers that provisioning created or changed, or was not allowed to change. */
export function logProvisioned(logger: Logger, results: readonly ProvisionResult[]): void {
  for (const r of results) {
    if (r.action === 'unchanged') continue;
    if (r.action === 'kept')
      logger.warn(
        { [r.kind]: r.name, differences: r.changes },
        `${r.kind} is configured differently from this service's settings, and this NATS user may not change it; ` +
          'left as it is (the service that owns it applies its settings)',
      );
    else logger.info({ [r.kind]: r.name, action: r.action, changes: r.changes }, `${r.kind} provisioned`);
  }
}

/**
 * What every service does first: connect to NATS as `redrive-<role>` (replies under the role's
 * own inbox prefix, which its NATS permissions expect) and provision every Redrive stream
 * (created, or updated in place where its user may), logging what changed. The caller owns the
 * connection (and drains it at shutdown); if provisioning fails, it is closed here.
 */
export async function connectAndProvision(
  settings: NatsSettings,
  role: ServiceRole,
  topologyOptions: Partial<TopologyOptions>,
  logger: Logger,
) {
  const topology = new Topology(topologyOptions);
  const inboxPrefix = settings.inboxPrefix ?? natsInboxPrefix(topology.options.prefix, role);
  const nc = await connectNats({ ...settings, inboxPrefix }, `redrive-${role}`, logger);
  try {
    const jsm = await jetstreamManager(nc);
    logProvisioned(logger, await ensureStreams(jsm, topology.streamConfigs()));
    return { nc, js: jetstream(nc), jsm, topology, inboxPrefix };
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
}
