import type { FastifyRequest } from 'fastify';
import { bearerToken, createCredentialCheck, HttpError, type RouteAuth, type Sessions } from '@redrive/http';

/** `viewer` reads; `operator` also changes (resolve, redrive, delete, cleanup, pause, resume). */
export type Role = 'viewer' | 'operator';

export interface Principal {
  name: string;
  role: Role;
  /** How the request proved it: a bearer token, or a session cookie signed in with one. */
  via?: 'token' | 'session';
  /** A session's expiry and CSRF token (for GET /v1/session). */
  session?: { expiresAt: string; csrfToken: string };
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2 };

export interface TokenAuth extends RouteAuth<Principal> {
  readonly permissions: readonly Role[];
  /** The principal an Authorization header names; throws 401 for a missing or unknown token. */
  authenticate(authorization: string | undefined): Principal;
  /** The principal a token names (a sign-in); throws 401 for a missing or unknown one. */
  signIn(token: string | undefined): Principal;
  /** Session cookies, when sign-in is on. */
  readonly sessions: Sessions | undefined;
}

/**
 * Bearer-token authentication with roles, on the shared constant-time credential check, and
 * (with `sessions`) the session cookies people sign in to with the same tokens. A request with
 * an Authorization header is judged by it alone; one without, by its session cookie, which
 * makes it a cookie-borne request whose changes need the CSRF header (session.ts). With no
 * tokens configured every request is refused: the operations plane is never open by accident.
 */
export function createTokenAuth(
  tokens: readonly { name: string; role: Role; token: string }[],
  sessions?: Sessions,
): TokenAuth {
  const check = createCredentialCheck(
    tokens.map((t) => ({ secret: t.token, principal: { name: t.name, role: t.role } })),
    {
      noun: 'bearer token',
      howToSend: sessions
        ? 'send "Authorization: Bearer <token>", or sign in (POST /v1/session) for a session cookie'
        : 'send "Authorization: Bearer <token>"',
      challenge: 'Bearer realm="redrive-dlq"',
    },
  );
  const byName = new Map(tokens.map((t) => [t.name, t]));
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
  const principalOf = (req: FastifyRequest): Principal => {
    if (sessions && req.headers.authorization === undefined && sessions.present(req)) {
      const { claims, csrfToken } = sessions.verify(req, (name) => byName.get(name)?.token);
      const t = byName.get(claims.name)!;
      return {
        name: t.name,
        role: t.role,
        via: 'session',
        session: { expiresAt: new Date(claims.exp * 1000).toISOString(), csrfToken },
      };
    }
    return { ...check(bearerToken(req.headers.authorization)), via: 'token' };
  };
  return {
    permissions: Object.keys(RANK) as Role[],
    sessions,
    authenticate: (authorization) => check(bearerToken(authorization)),
    signIn: (token) => check(token),
    principalOf,
    /** Throws 403 unless the principal's role includes `need`. */
    authorize,
  };
}
