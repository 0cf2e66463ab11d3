export { ConfigError, type ConfigProblem } from './errors.js';
export { parseEnv, freezeConfig, type Env, type Frozen } from './load.js';
export {
  bool,
  bytes,
  duration,
  MAX_TIMER_MS,
  int,
  json,
  list,
  oneOf,
  optStr,
  optUrl,
  parseBytes,
  parseDuration,
  port,
  secret,
  str,
  urlList,
} from './fields.js';
export { isExampleSecret, secretText } from './secrets.js';
export { natsEnv, natsSettingsFrom } from './nats.js';
export { topologyEnv, topologyOptionsFrom } from './topology.js';
export { runtimeEnv } from './runtime.js';
export { serviceEnv, serviceSettingsFrom } from './service.js';
export { handoffEnv } from './handoff.js';
