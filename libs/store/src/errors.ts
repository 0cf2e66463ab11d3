/** Thrown when Postgres cannot be reached or the connection is lost; retryable (error class `database`). */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
  }
}

// Socket-level failures: the server is down, unreachable, or dropped the connection.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

// SQLSTATEs saying the server cannot serve this connection right now: class 08
// (connection exception), shutdowns and restarts, and a full connection table.
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

// pg and pg-pool raise these without a code, so the message is all there is to go on.
const PG_CONNECTION_MESSAGES = new Set([
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
  'Connection terminated unexpectedly',
  'Connection terminated',
  'timeout expired',
  'Client has encountered a connection error and is not queryable',
]);

/** True when `err` means the database could not be reached or the connection broke (not a bad query). */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof StoreUnavailableError) return true;
  // Node reports a failed multi-address connect (happy eyeballs) as an AggregateError.
  if (err instanceof AggregateError && err.errors.some(isConnectionFailure)) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08')) return true;
  }
  if (PG_CONNECTION_MESSAGES.has(err.message)) return true;
  return err.cause !== undefined && err.cause !== err && isConnectionFailure(err.cause);
}

/** Rethrows `err`, as a StoreUnavailableError when it is a connection failure. */
export function rethrowUnavailable(err: unknown, doing: string): never {
  if (err instanceof StoreUnavailableError) throw err;
  if (isConnectionFailure(err)) {
    const detail = err instanceof Error ? err.message || (err as { code?: string }).code : String(err);
    throw new StoreUnavailableError(`Postgres unavailable while ${doing}: ${detail}`, { cause: err });
  }
  throw err;
}
