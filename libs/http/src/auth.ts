import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The credential a request presents: `Authorization: Bearer …` or `X-Api-Key`. */
export function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  // Another scheme in Authorization (a proxy's Basic credentials, say) falls through to X-Api-Key.
  const m = auth ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
  if (m) return m[1]?.trim();
  const key = req.headers['x-api-key'];
  return typeof key === 'string' ? key.trim() : undefined;
}

/**
 * Checks a request's key against the configured ones in constant time; throws 401 when keys
 * are configured and the request has none of them. With no keys configured every request passes.
 */
export function createKeyCheck(keys: readonly string[]): (req: FastifyRequest) => void {
  const digests = keys.map(digest);
  return (req) => {
    if (digests.length === 0) return;
    const key = presentedKey(req);
    if (!key) {
      throw new HttpError(401, 'UNAUTHORIZED', 'an API key is required: send "Authorization: Bearer <key>"', {
        'www-authenticate': 'Bearer',
      });
    }
    const d = digest(key);
    if (!digests.some((known) => timingSafeEqual(known, d))) {
      throw new HttpError(401, 'UNAUTHORIZED', 'the API key is not valid', { 'www-authenticate': 'Bearer' });
    }
  };
}
