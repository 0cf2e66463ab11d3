/**
 * What each refusal of a dead-letter operation means, whatever the transport: a request that
 * is wrong (`invalid`), something that is not there (`not_found`), a state that forbids it
 * (`conflict`), a request that would do harm (`unprocessable`), or a dependency that is down
 * for now (`unavailable`, worth retrying). The code is the stable name callers see.
 */
export const OPERATION_ERROR_KINDS = {
  INVALID_JSON: 'invalid',
  VALIDATION_ERROR: 'invalid',
  INVALID_CURSOR: 'invalid',
  NOT_FOUND: 'not_found',
  OPERATION_FINISHED: 'conflict',
  PAYLOAD_UNAVAILABLE: 'conflict',
  TYPE_PAUSED: 'conflict',
  NO_WORKER: 'unprocessable',
  NOT_PUBLISHED: 'unavailable',
  STORE_UNAVAILABLE: 'unavailable',
} as const;

export type OperationErrorCode = keyof typeof OPERATION_ERROR_KINDS;
export type OperationErrorKind = (typeof OPERATION_ERROR_KINDS)[OperationErrorCode];

/**
 * Thrown by the operations on dead letters (and the admin operations built on them), for any
 * caller: the HTTP app maps it to a status (operations/app.ts), the NATS endpoints to a micro
 * error (operations/micro.ts). Nothing below operations/ knows either transport.
 */
export class OperationError extends Error {
  override readonly name = 'OperationError';
  readonly kind: OperationErrorKind;
  constructor(
    readonly code: OperationErrorCode,
    message: string,
    /** For `unavailable`: how long a caller should wait before trying again. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.kind = OPERATION_ERROR_KINDS[code];
  }
}
