import { bool, duration, oneOf } from './fields.js';

/** Environment variables every long-running process reads: logging and shutdown. */
export const runtimeEnv = {
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info').describe(
    '`fatal`, `error`, `warn`, `info`, `debug`, `trace`, or `silent`',
  ),
  LOG_PRETTY: bool(false).describe('human-readable logs instead of JSON lines'),
  SHUTDOWN_GRACE: duration('25s', { max: 3_600_000 }).describe(
    'how long in-flight work may finish after SIGTERM (at most 1h)',
  ),
};
