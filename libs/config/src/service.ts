import type { Frozen } from './load.js';
import { natsEnv, natsSettingsFrom } from './nats.js';
import { runtimeEnv } from './runtime.js';
import { topologyEnv, topologyOptionsFrom } from './topology.js';

/** The variables every Redrive service reads: NATS, the stream topology, logging and shutdown. */
export const serviceEnv = { ...natsEnv, ...topologyEnv, ...runtimeEnv };

type ServiceEnv = Frozen<{ [K in keyof typeof serviceEnv]: ReturnType<(typeof serviceEnv)[K]['parse']> }>;

/** The settings every service takes from `serviceEnv`; a service's own settings go beside them. */
export function serviceSettingsFrom(env: Readonly<ServiceEnv>) {
  return {
    nats: natsSettingsFrom(env),
    topology: topologyOptionsFrom(env),
    log: { level: env.LOG_LEVEL, pretty: env.LOG_PRETTY },
    shutdownGraceMs: env.SHUTDOWN_GRACE,
  };
}
