import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

// Sessions for people in a browser: a token is given once (sign-in), and the browser then
// carries an HttpOnly, SameSite=Strict cookie with an expiry instead of the token. The cookie
// is signed, not stored: any replica that shares the secret accepts it, and it names the
// credential it came from, whose secret is part of the signature, so removing or rotating
// that credential ends its sessions. Requests that change something with the cookie must
// also send the session's CSRF token in a header (what a page can read from the sign-in
// answer, and another site cannot); requests with a bearer token are not cookie-borne and
// need none.

/** The header a cookie-borne change must carry the session's CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface SessionOptions {
  /** Signs the cookies (HMAC-SHA256); at least 32 bytes. Replicas that share it share sessions. */
  secret: Buffer;
  /** How long a session lasts from sign-in. */
  ttlMs: number;
  cookieName?: string;
  /** Adds `Secure` (the cookie only travels over HTTPS); on whenever the API is served over TLS. */
  secure?: boolean;
  now?: () => number;
}

/** What a session cookie says: who signed in, with which credential, until when. */
export interface SessionClaims {
  /** The credential's name (a token's name). */
  name: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
  /** A random id: two sign-ins never make the same cookie or CSRF token. */
  sid: string;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/** The cookies of a request, by name (the first of each). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/**
 * Issues and checks session cookies. `credentialSecret(name)` is the secret of the credential a
 * session was made with (undefined once it is gone): it is part of each cookie's signature.
 */
export function createSessions(opts: SessionOptions) {
  if (opts.secret.length < 32) throw new Error('a session secret needs at least 32 bytes');
  const cookieName = opts.cookieName ?? 'redrive_session';
  const now = opts.now ?? Date.now;
  const mac = (what: string, body: string, credential: string) =>
    createHmac('sha256', opts.secret)
      .update(`${what}\n${body}\n`)
      .update(createHash('sha256').update(credential).digest())
      .digest('base64url');

  const cookie = (value: string, maxAgeSeconds: number) =>
    [
      `${cookieName}=${value}`,
      'Path=/',
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${maxAgeSeconds}`,
      ...(maxAgeSeconds > 0 ? [`Expires=${new Date(now() + maxAgeSeconds * 1000).toUTCString()}`] : []),
      ...(opts.secure ? ['Secure'] : []),
    ].join('; ');

  return {
    cookieName,

    /** Starts a session for the credential `name` (secret `credential`): its cookie and CSRF token. */
    issue(reply: FastifyReply, name: string, credential: string): { claims: SessionClaims; csrfToken: string } {
      const claims: SessionClaims = {
        name,
        exp: Math.floor((now() + opts.ttlMs) / 1000),
        sid: randomBytes(16).toString('base64url'),
      };
      const body = b64(JSON.stringify(claims));
      void reply.header(
        'set-cookie',
        cookie(`${body}.${mac('session', body, credential)}`, Math.floor(opts.ttlMs / 1000)),
      );
      return { claims, csrfToken: mac('csrf', body, credential) };
    },

    /** Ends the browser's session (the cookie is removed). */
    clear(reply: FastifyReply): void {
      void reply.header('set-cookie', cookie('', 0));
    },

    /** Whether the request carries a session cookie at all (valid or not). */
    present(req: FastifyRequest): boolean {
      return parseCookies(req.headers.cookie).has(cookieName);
    },

    /**
     * The session a request's cookie proves, with its CSRF token; throws 401 for a cookie that
     * is malformed, forged, expired or whose credential is gone, and 403 for a change without
     * the right CSRF header.
     */
    verify(
      req: FastifyRequest,
      credentialSecret: (name: string) => string | undefined,
    ): { claims: SessionClaims; csrfToken: string } {
      const refuse = (why: string): never => {
        throw new HttpError(401, 'UNAUTHORIZED', `the session ${why}: sign in again (POST /v1/session)`, {
          'www-authenticate': 'Bearer realm="redrive-dlq"',
        });
      };
      const value = parseCookies(req.headers.cookie).get(cookieName) ?? '';
      const [body, sig, extra] = value.split('.');
      if (!body || !sig || extra !== undefined) return refuse('cookie is malformed');
      let claims: SessionClaims;
      try {
        claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as SessionClaims;
      } catch {
        return refuse('cookie is malformed');
      }
      if (typeof claims?.name !== 'string' || typeof claims.exp !== 'number') return refuse('cookie is malformed');
      const credential = credentialSecret(claims.name);
      // The same work whether or not the name is known, so the answer's time says nothing.
      if (!safeEqual(mac('session', body, credential ?? ''), sig) || credential === undefined)
        return refuse('is not valid');
      if (claims.exp * 1000 <= now()) return refuse('has expired');
      const csrfToken = mac('csrf', body, credential);
      if (!SAFE_METHODS.has(req.method)) {
        const sent = req.headers[CSRF_HEADER];
        if (typeof sent !== 'string' || !safeEqual(sent, csrfToken)) {
          throw new HttpError(
            403,
            'CSRF_TOKEN_INVALID',
            `a change made with the session cookie needs the session's CSRF token in ${CSRF_HEADER} (from POST or GET /v1/session)`,
          );
        }
      }
      return { claims, csrfToken };
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
