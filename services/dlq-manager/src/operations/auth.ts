import type { FastifyRequest } from 'fastify';
import { bearerToken, createCredentialCheck, HttpError, type RouteAuth } from '@redrive/http';

/** `viewer` reads; `operator` also changes (resolve, redrive, delete, cleanup). */
export type Role = 'viewer' | 'operator';

export interface Principal {
  name: string;
  role: Role;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2 };

export interface TokenAuth extends RouteAuth<Principal> {
  readonly permissions: readonly Role[];
  /** The principal an Authorization header names; throws 401 for a missing or unknown token. */
  authenticate(authorization: string | undefined): Principal;
}

/**
 * Bearer-token authentication with roles, on the shared constant-time credential check. With
 * no tokens configured every request is refused: the operations plane is never open by accident.
 */
export function createTokenAuth(tokens: readonly { name: string; role: Role; token: string }[]): TokenAuth {
  const check = createCredentialCheck(
    tokens.map((t) => ({ secret: t.token, principal: { name: t.name, role: t.role } })),
    {
      noun: 'bearer token',
      howToSend: 'send "Authorization: Bearer <token>"',
      challenge: 'Bearer realm="redrive-dlq"',
    },
  );
  const authorize = (principal: Principal, need: string): void => {
    const needed = (RANK as Partial<Record<string, number>>)[need];
    // An unknown role is needed by nobody's token: refused, never waved through.
    if (needed === undefined || RANK[principal.role] < needed) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        `${principal.name} has the ${principal.role} role; this operation needs ${need}`,
      );
    }
  };
  return {
    permissions: Object.keys(RANK) as Role[],
    authenticate: (authorization) => check(bearerToken(authorization)),
    principalOf: (req: FastifyRequest) => check(bearerToken(req.headers.authorization)),
    /** Throws 403 unless the principal's role includes `need`. */
    authorize,
  };
}
