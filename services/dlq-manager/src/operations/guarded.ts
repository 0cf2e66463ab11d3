import { isConnectionFailure } from '@redrive/store';
import { OperationError } from '../dead-letters/errors.js';

/** Refuses as unavailable (retry in 5 s), rather than failing, every operation while Postgres cannot be reached. */
export function guarded<T extends Record<string, (...args: never[]) => Promise<unknown>>>(ops: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, op] of Object.entries(ops)) {
    out[name] = async (...args: never[]) => {
      try {
        return await op(...args);
      } catch (err) {
        if (isConnectionFailure(err))
          throw new OperationError('STORE_UNAVAILABLE', 'Postgres is unavailable; retry later', 5);
        throw err;
      }
    };
  }
  return out as T;
}
