import { bool, duration, oneOf } from './fields.js';

/** Environment variables every long-running process reads: logging and shutdown. */
export const runtimeEnv = {
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  LOG_PRETTY: bool(false),
  SHUTDOWN_GRACE: duration('25s', { max: 3_600_000 }),
};
