import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from '@redrive/http';

/** `viewer` reads; `operator` also changes (resolve, redrive, delete, cleanup). */
export type Role = 'viewer' | 'operator';

export interface Principal {
  name: string;
  role: Role;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2 };

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

const challenge = { 'www-authenticate': 'Bearer realm="redrive-dlq"' };

/**
 * Bearer-token authentication with roles. Tokens are compared as SHA-256 digests in constant
 * time, against every configured token, so neither timing nor an early exit tells how close a
 * guess was. With no tokens configured every request is refused: the operations plane is never
 * open by accident.
 */
export function createTokenAuth(tokens: readonly { name: string; role: Role; token: string }[]) {
  const known = tokens.map((t) => ({ digest: digest(t.token), principal: { name: t.name, role: t.role } }));
  return {
    /** The principal an Authorization header names; throws 401 for a missing or unknown token. */
    authenticate(authorization: string | undefined): Principal {
      const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
      if (!m) {
        throw new HttpError(
          401,
          'UNAUTHORIZED',
          'a bearer token is required: send "Authorization: Bearer <token>"',
          challenge,
        );
      }
      const d = digest(m[1]!);
      let found: Principal | undefined;
      for (const k of known) if (timingSafeEqual(k.digest, d)) found = k.principal;
      if (!found) throw new HttpError(401, 'UNAUTHORIZED', 'the bearer token is not valid', challenge);
      return found;
    },

    /** Throws 403 unless the principal's role includes `need`. */
    authorize(principal: Principal, need: Role): void {
      if (RANK[principal.role] < RANK[need]) {
        throw new HttpError(
          403,
          'FORBIDDEN',
          `${principal.name} has the ${principal.role} role; this operation needs ${need}`,
        );
      }
    },
  };
}

export type TokenAuth = ReturnType<typeof createTokenAuth>;
