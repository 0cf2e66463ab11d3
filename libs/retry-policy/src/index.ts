export {
  classPolicy,
  createRetryPolicy,
  DEFAULT_CLASS_POLICIES,
  ERROR_CLASSES,
  type ClassOverrides,
  type ClassPolicy,
  type ErrorClass,
  type RetryPolicy,
} from './classes.js';
export { classify, parseRetryAfter, type Classification } from './classify.js';
export { backoffDelay, retryDelay } from './backoff.js';
export { decideCrash, decideFailure, type CrashDecision, type Decision, type FailureFacts } from './decide.js';
