export { defineHandler, type HandlerDefinition, type HandlerFn, type Job, type JobContext } from './handler.js';
export {
  HttpStatusError,
  JobTimeoutError,
  NonRetryableError,
  RateLimitError,
  RetryableError,
  SignatureError,
  ValidationError,
} from './errors.js';
