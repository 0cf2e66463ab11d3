export { defineHandler, type HandlerDefinition, type HandlerFn, type Job, type JobContext } from './handler.js';
export { NonRetryableError, RateLimitError, RetryableError, ValidationError } from './errors.js';
