// NATS with JetStream: ready when the client connects and JetStream answers an account-info
// request; started as `nats-server -js` with its store under the data directory.

import { jetstreamManager } from '@nats-io/jetstream';
import { AuthorizationError, connect, type NatsConnection } from '@nats-io/transport-node';
import { MIN_NATS_SERVER, unsupportedServerReason } from '../../libs/messaging/src/server-version.js';
import { natsServerBinary } from './nats-binary.js';
import { describeError, INFRA_HOST, isRefused, PROBE_TIMEOUT_MS, processServer, type ProbeResult } from './common.js';

async function probe(port: number): Promise<ProbeResult> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: `${INFRA_HOST}:${port}`,
      name: 'redrive-infra',
      reconnect: false,
      timeout: PROBE_TIMEOUT_MS,
    });
  } catch (err) {
    if (isRefused(err)) return { state: 'down', detail: 'connection refused' };
    // A server with authorization serves; the services bring their own credentials.
    if (err instanceof AuthorizationError) {
      return { state: 'ready', detail: 'nats-server requires credentials (JetStream not checked without them)' };
    }
    // No greeting in time: still starting, or not a NATS server at all.
    return { state: 'starting', detail: `no NATS greeting: ${describeError(err)}` };
  }
  try {
    const version = nc.info?.version ?? '?';
    if (!nc.info?.jetstream) {
      return { state: 'foreign', detail: `nats-server ${version} runs without JetStream: restart it with -js` };
    }
    const jsm = await jetstreamManager(nc, { timeout: PROBE_TIMEOUT_MS, checkAPI: false });
    await jsm.getAccountInfo();
    const old = unsupportedServerReason(nc.info?.version) !== undefined;
    // Used as it is (it is someone else's server), but said: it can lose a job at a restart.
    const warning = old
      ? ` (older than ${MIN_NATS_SERVER}, which Redrive needs to keep every job through a NATS restart: docs/reliability.md)`
      : '';
    return { state: 'ready', detail: `nats-server ${version}, JetStream answers${warning}` };
  } catch (err) {
    if ((err as Error).name === 'JetStreamNotEnabled') {
      return { state: 'foreign', detail: 'nats-server runs JetStream, but not for this account' };
    }
    return { state: 'starting', detail: `JetStream does not answer yet: ${describeError(err)}` };
  } finally {
    await nc.close().catch(() => undefined);
  }
}

const spec = {
  name: 'nats',
  serves: 'NATS with JetStream',
  probe,
  command: natsServerBinary,
  install: 'https://docs.nats.io/running-a-nats-service/introduction/installation (or apt-get install nats-server)',
} as const;

export const nats = processServer({
  ...spec,
  args: (port, dir) => ['-js', '-a', INFRA_HOST, '-p', String(port), '-sd', dir],
});

/**
 * NATS with the authorization in `configFile` (rendered from libs/messaging/src/permissions.ts):
 * only its users connect, each to its own subjects. The probe counts "credentials required" as
 * serving.
 */
export function securedNats(configFile: string) {
  return processServer({
    ...spec,
    serves: 'NATS with JetStream and authorization',
    args: (port, dir) => ['-c', configFile, '-js', '-a', INFRA_HOST, '-p', String(port), '-sd', dir],
  });
}
