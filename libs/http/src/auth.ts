import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/** What a route declares in `config.access` when anyone may call it (probes, metrics). */
export const PUBLIC = 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Who may call the route: `'public'`, or the permission a caller's credential must carry
     * (a role, a scope; the service's RouteAuth lists them). A route that declares nothing is
     * refused to everyone: access is decided on the route that matched, never on the URL text.
     */
    access?: string;
  }
  interface FastifyRequest {
    /** Who the request's credential names; null on public routes. */
    principal: Principal | null;
  }
}

/** The caller a credential names. */
export interface Principal {
  readonly name: string;
}

/** How an app authenticates callers and decides what each may do. */
export interface RouteAuth<P extends Principal = Principal> {
  /** The permissions routes may declare in `config.access`, besides `'public'`. */
  readonly permissions: readonly string[];
  /** The principal a request's credential names; throws a 401 HttpError without a valid one. */
  principalOf(req: FastifyRequest): P;
  /** Throws a 403 HttpError unless `principal` holds `need`. */
  authorize(principal: P, need: string): void;
}

/** A service that has no callers of its own: only its public routes answer. */
export const NO_CALLERS: RouteAuth = {
  permissions: [],
  principalOf: () => {
    throw new HttpError(401, 'UNAUTHORIZED', 'this service has no credentials; only its probes are public', {
      'www-authenticate': 'Bearer',
    });
  },
  authorize: () => undefined,
};

/** The token of `Authorization: Bearer <token>` (any case, surrounding spaces ignored). */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = authorization ? /^Bearer\s+(\S+)$/i.exec(authorization.trim()) : null;
  return m?.[1];
}

/** The credential a request presents: `Authorization: Bearer …`, else `X-Api-Key`. */
export function presentedKey(req: FastifyRequest): string | undefined {
  // Another scheme in Authorization (a proxy's Basic credentials, say) falls through to X-Api-Key.
  const bearer = bearerToken(req.headers.authorization);
  if (bearer) return bearer;
  const key = req.headers['x-api-key'];
  return typeof key === 'string' && key.trim() !== '' ? key.trim() : undefined;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export interface CredentialCheckOptions {
  /** How messages name the credential: "bearer token", "API key". */
  noun: string;
  /** How a caller should send it, for the 401 message. */
  howToSend: string;
  /** The WWW-Authenticate challenge. */
  challenge: string;
}

/**
 * The one secret check of Redrive's HTTP APIs: maps a presented secret to its principal, or
 * throws 401. Secrets are compared as SHA-256 digests in constant time against every
 * configured one, with no early exit, so neither timing nor the answer tells how close a guess
 * was. With nothing configured every secret is refused.
 */
export function createCredentialCheck<P>(
  credentials: readonly { secret: string; principal: P }[],
  opts: CredentialCheckOptions,
): (secret: string | undefined) => P {
  const known = credentials.map((c) => ({ digest: digest(c.secret), principal: c.principal }));
  const headers = { 'www-authenticate': opts.challenge };
  const article = /^[aeiou]/i.test(opts.noun) ? 'an' : 'a';
  return (secret) => {
    if (!secret) {
      throw new HttpError(401, 'UNAUTHORIZED', `${article} ${opts.noun} is required: ${opts.howToSend}`, headers);
    }
    const d = digest(secret);
    let found: P | undefined;
    for (const k of known) if (timingSafeEqual(k.digest, d)) found = k.principal;
    if (found === undefined) throw new HttpError(401, 'UNAUTHORIZED', `the ${opts.noun} is not valid`, headers);
    return found;
  };
}

/**
 * Authorises every request on the route it matched: fastify has already decoded and routed
 * the path, so `/%761/…`, `//v1/…` or `/V1/…` is either that route (and meets its rule) or no
 * route at all (404, which reveals nothing). Runs first, before the body is read. Routes must
 * be added after this is installed; a route declaring an access value the auth does not know
 * fails at registration.
 */
export function guardRoutes(app: FastifyInstance, auth: RouteAuth): void {
  const allowed = new Set([PUBLIC, ...auth.permissions]);
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access !== undefined && !allowed.has(access)) {
      throw new Error(
        `route ${String(route.method)} ${route.url} declares access "${access}"; expected one of ${[...allowed].join(', ')}`,
      );
    }
  });
  app.addHook('onRequest', async (req) => {
    // No route matched: the not-found handler answers with the path the caller sent, nothing more.
    if (req.is404) return;
    const access = req.routeOptions.config.access;
    if (access === PUBLIC) return;
    req.principal = auth.principalOf(req);
    if (access === undefined) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        `${req.method} ${req.routeOptions.url ?? ''} declares no access rule, so it answers nobody`,
      );
    }
    auth.authorize(req.principal, access);
  });
}
