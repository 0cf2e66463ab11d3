export { createLogger, type Logger, type LoggerSettings } from './logger.js';
export { deadlineIn, ShutdownStack, within, type Deadline, type Stoppable } from './shutdown.js';
export { runService, type RunOptions } from './run.js';
export { loadConfigOrExit } from './startup.js';
