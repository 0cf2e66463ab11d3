import {
  HttpStatusError,
  JobTimeoutError,
  NonRetryableError,
  RateLimitError,
  RetryableError,
  SignatureError,
  ValidationError,
} from '@redrive/sdk';
import type { ErrorClass } from './classes.js';

/** What a failure is, as far as retrying is concerned. */
export interface Classification {
  errorClass: ErrorClass;
  /** The handler decided: `false` never retries, `true` retries even an otherwise final class. */
  retryable?: boolean;
  /** The delay the failure asks for and gets (a 429's Retry-After, RetryableError's delay). */
  delayMs?: number;
  /** A delay the retry must not come sooner than (a 503's or 408's Retry-After). */
  minDelayMs?: number;
  message: string;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  // c-ares (dns.Resolver): a resolution that timed out, a server that failed or refused, no address.
  'ETIMEOUT',
  'ESERVFAIL',
  'EREFUSED',
  'ENODATA',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

// SQLSTATEs worth retrying: connection exceptions (class 08), serialization failures and
// deadlocks (40001, 40P01), and a server that is restarting or full (57P01–57P03, 53300).
const DATABASE_RETRYABLE_SQLSTATE = /^(08\w{3}|40001|40P01|57P0[123]|53300)$/;

type Coded = { code?: unknown; status?: unknown; name?: unknown; cause?: unknown; message?: unknown };

/** Parses Retry-After (seconds, or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function byStatus(status: number): ErrorClass | undefined {
  if (status === 429) return 'rate_limit';
  if (status === 408) return 'timeout';
  if (status >= 500 && status <= 599) return 'server';
  if (status >= 400 && status <= 499) return 'client';
  return undefined;
}

/**
 * An HttpStatusError is a final answer that is not a success: 408, 429 and 5xx are worth
 * retrying, and every other status (4xx, a 3xx redirect that was not followed, anything
 * odd) is the target refusing this request, which the same request will not change.
 */
function byHttpStatus(status: number): ErrorClass {
  return byStatus(status) ?? 'client';
}

/** Walks an error and its causes, and names the class of the first one a rule recognises. */
function classOf(err: unknown, depth = 0): ErrorClass | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  const e = err as Coded;
  if (err instanceof JobTimeoutError || e.name === 'TimeoutError') return 'timeout';
  if (err instanceof SignatureError) return 'signature';
  if (err instanceof ValidationError || e.name === 'HeaderError') return 'validation';
  if (err instanceof HttpStatusError) return byHttpStatus(err.status);
  if (typeof e.status === 'number' && e.status >= 400) {
    const c = byStatus(e.status);
    if (c) return c;
  }
  if (e.name === 'StoreUnavailableError') return 'database';
  if (typeof e.code === 'string') {
    if (NETWORK_CODES.has(e.code)) return 'network';
    if (DATABASE_RETRYABLE_SQLSTATE.test(e.code)) return 'database';
  }
  if (typeof e.message === 'string' && /socket hang up|other side closed/i.test(e.message)) return 'network';
  return classOf(e.cause, depth + 1);
}

/**
 * Classifies anything a handler threw. Typed errors from the SDK decide for themselves;
 * everything else is recognised by error codes, HTTP status, SQLSTATE, class and, last,
 * message patterns; what no rule knows is `unknown`.
 */
export function classify(err: unknown, now: number = Date.now()): Classification {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof RateLimitError) {
    return {
      errorClass: 'rate_limit',
      message,
      ...(err.retryAfterMs !== undefined ? { delayMs: err.retryAfterMs } : {}),
    };
  }
  if (err instanceof RetryableError) {
    return {
      errorClass: classOf(err.cause) ?? 'unknown',
      retryable: true,
      message,
      ...(err.delayMs !== undefined ? { delayMs: err.delayMs } : {}),
    };
  }
  const errorClass = classOf(err) ?? 'unknown';
  if (err instanceof NonRetryableError) return { errorClass, retryable: false, message };
  if (err instanceof HttpStatusError && errorClass === 'rate_limit') {
    const delayMs = parseRetryAfter(err.retryAfter, now);
    return { errorClass, message, ...(delayMs !== undefined ? { delayMs } : {}) };
  }
  if (err instanceof HttpStatusError && (errorClass === 'server' || errorClass === 'timeout')) {
    // 503 and 408 may carry Retry-After too; it is a floor, not a replacement for backoff.
    const minDelayMs = parseRetryAfter(err.retryAfter, now);
    return { errorClass, message, ...(minDelayMs !== undefined ? { minDelayMs } : {}) };
  }
  return { errorClass, message };
}
