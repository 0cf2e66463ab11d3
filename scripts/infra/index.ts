// Local infrastructure for development and CI: NATS (JetStream), Postgres and Redis on
// 127.0.0.1. Whatever already serves on its port is used as it is; whatever does not is
// started from the installed binaries with its data under one directory (default .stack/).
// "Serves" means each server's own client connected and got an answer (nats.ts, postgres.ts,
// redis.ts), not only that a port is open.
//
// Used by `pnpm stack` (attached: what it started stops with it), by `pnpm infra:up`
// (detached: what it started keeps running after the script exits, as CI needs) and by the
// chaos suite (private servers on free ports).

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  display,
  INFRA_HOST,
  InfraError,
  pad,
  probeWithin,
  waitReady,
  type InfraHandle,
  type InfraName,
  type Server,
  type StartContext,
} from './common.js';
import { nats } from './nats.js';
import { postgres } from './postgres.js';
import { redis } from './redis.js';

export { INFRA_HOST, InfraError, type InfraHandle, type InfraName } from './common.js';
export { securedNats } from './nats.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_DATA_DIR = join(REPO_ROOT, '.stack');

export const INFRA_NAMES: readonly InfraName[] = ['nats', 'postgres', 'redis'];
export const DEFAULT_PORTS: Readonly<Record<InfraName, number>> = { nats: 4222, postgres: 5432, redis: 6379 };
const SERVERS: Readonly<Record<InfraName, Server>> = { nats, postgres, redis };

export interface InfraOptions {
  /** Where started servers keep their data and logs (default `<repo>/.stack`). */
  dataDir?: string;
  /** Started servers outlive this process (CI); otherwise they stop when it exits. */
  detached?: boolean;
  /** Receives one human-readable line per event (default: console.log with an "infra" prefix). */
  log?: (line: string) => void;
  /** Other ports than the standard ones (tests of this module). */
  ports?: Partial<Record<InfraName, number>>;
  /** How long a server may take to accept connections once started (default 60 s). */
  readyTimeoutMs?: number;
  /** Only these (all three by default); `pnpm stack` runs a NATS of its own with authorization. */
  only?: readonly InfraName[];
}

export interface InfraStatus {
  readonly name: InfraName;
  readonly port: number;
  /** `running`: found already serving; `started`: started by this call. */
  readonly state: 'running' | 'started';
  /** What answered, e.g. "nats-server 2.9.10, JetStream answers". */
  readonly detail: string;
}

export interface Infra {
  readonly statuses: readonly InfraStatus[];
  /** What this call started, in start order; what was already running is not here. */
  readonly started: readonly InfraHandle[];
  /** Stops everything this call started (last started first); leaves what was already running. */
  stop(): Promise<void>;
}

const defaultLog = (line: string) => console.log(`infra  ${line}`);

/**
 * Makes sure NATS with JetStream, Postgres and Redis serve on 127.0.0.1, starting whichever
 * is not running. Throws InfraError (after stopping what it started, unless detached) when
 * one cannot be reached or started.
 */
export async function ensureInfra(opts: InfraOptions = {}): Promise<Infra> {
  const dataDir = resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  const log = opts.log ?? defaultLog;
  const detached = opts.detached ?? false;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const ports = { ...DEFAULT_PORTS, ...opts.ports };
  const ctx: StartContext = { dataDir, detached, log, readyTimeoutMs };

  const names = INFRA_NAMES.filter((n) => !opts.only || opts.only.includes(n));
  const results = await Promise.allSettled(names.map((name) => ensureOne(SERVERS[name], ports[name], ctx)));

  const started = results.flatMap((r) => (r.status === 'fulfilled' && r.value.handle ? [r.value.handle] : []));
  const stopAll = async () => {
    for (const h of [...started].reverse()) {
      try {
        await h.stop();
        log(`${pad(h.name)} ${INFRA_HOST}:${h.port}  stopped`);
      } catch (err) {
        log(`${pad(h.name)} ${INFRA_HOST}:${h.port}  failed to stop: ${(err as Error).message}`);
      }
    }
  };
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    if (!detached) await stopAll();
    throw new InfraError(failures.map((e) => (e instanceof Error ? e.message : String(e))).join('\n'));
  }
  return {
    statuses: results.map((r) => (r as PromiseFulfilledResult<{ status: InfraStatus }>).value.status),
    started,
    stop: stopAll,
  };
}

/** Finds one server serving on its port, or starts it. */
async function ensureOne(
  server: Server,
  port: number,
  ctx: StartContext,
): Promise<{ status: InfraStatus; handle?: InfraHandle }> {
  const { name } = server;
  const where = `${pad(name)} ${INFRA_HOST}:${port}`;
  let probe = await probeWithin(server, port);
  if (probe.state === 'starting') {
    ctx.log(`${where}  answers but is not ready yet (${probe.detail}); waiting up to ${ctx.readyTimeoutMs / 1000} s`);
    probe = await waitReady(server, port, ctx.readyTimeoutMs);
  }
  if (probe.state === 'ready') {
    ctx.log(`${where}  already running: ${probe.detail} (left as it is)`);
    return { status: { name, port, state: 'running', detail: probe.detail } };
  }
  if (probe.state === 'foreign') {
    throw new InfraError(`${name}: something else listens on ${INFRA_HOST}:${port}: ${probe.detail}`);
  }
  ctx.log(`${where}  not running: starting it`);
  const handle = await server.start(port, ctx);
  const ready = await probeWithin(server, port);
  ctx.log(
    `${where}  started: ${ready.detail} (pid ${handle.pid ?? '?'}, data ${display(handle.dataDir)}, log ${display(handle.logFile)})`,
  );
  return { status: { name, port, state: 'started', detail: ready.detail }, handle };
}
