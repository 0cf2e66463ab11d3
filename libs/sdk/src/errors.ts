/** Thrown by a handler when retrying cannot help: the job is dead-lettered at once. */
export class NonRetryableError extends Error {
  override readonly name: string = 'NonRetryableError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Thrown by a handler to ask for a retry, optionally after an explicit delay. */
export class RetryableError extends Error {
  override readonly name: string = 'RetryableError';
  constructor(
    message: string,
    readonly delayMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Thrown by a handler when a downstream said "slow down"; `retryAfterMs` wins over backoff. */
export class RateLimitError extends Error {
  override readonly name: string = 'RateLimitError';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The job's payload or headers are not what its handler accepts: never retried. */
export class ValidationError extends NonRetryableError {
  override readonly name: string = 'ValidationError';
  constructor(
    message: string,
    readonly path: string = '',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A downstream answered with a non-2xx HTTP status; the retry policy classifies by `status`. */
export class HttpStatusError extends Error {
  override readonly name: string = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly url: string,
    /** The Retry-After header as sent (seconds or an HTTP date), if any. */
    readonly retryAfter?: string,
    options?: ErrorOptions,
  ) {
    super(`${url} answered HTTP ${status}`, options);
  }
}

/** A signature or authentication check failed: retrying with the same input cannot help. */
export class SignatureError extends NonRetryableError {
  override readonly name: string = 'SignatureError';
}

/** The handler ran past its deadline; the retry policy classifies it as `timeout`. */
export class JobTimeoutError extends Error {
  override readonly name: string = 'JobTimeoutError';
  constructor(
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`handler did not finish within ${timeoutMs} ms`, options);
  }
}
