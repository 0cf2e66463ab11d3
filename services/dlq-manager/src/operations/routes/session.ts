import type { FastifyInstance } from 'fastify';
import { errorBodySchema, HttpError, PUBLIC } from '@redrive/http';
import type { Principal, TokenAuth } from '../auth.js';

const signInBody = {
  type: 'object',
  required: ['token'],
  additionalProperties: false,
  properties: { token: { type: 'string', minLength: 1, maxLength: 1_000 } },
} as const;

const sessionView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    role: { type: 'string' },
    via: { type: 'string' },
    expiresAt: { type: 'string' },
    csrfToken: { type: 'string' },
  },
} as const;

const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema };

const view = (p: Principal) => ({
  name: p.name,
  role: p.role,
  via: p.via ?? 'token',
  ...(p.session ? { expiresAt: p.session.expiresAt, csrfToken: p.session.csrfToken } : {}),
});

/**
 * Sign-in for people (a browser): POST /v1/session trades a token for an HttpOnly,
 * SameSite=Strict session cookie with an expiry, and answers the CSRF token the page sends
 * with each change; GET says who is signed in (and the CSRF token again, after a reload);
 * DELETE signs out. Bearer-token callers need none of it.
 */
export async function sessionRoutes(app: FastifyInstance, opts: { auth: TokenAuth }): Promise<void> {
  const { auth } = opts;

  app.post<{ Body: { token: string } }>(
    '/v1/session',
    // Public: the token in the body is the credential (checked like a bearer token).
    { config: { access: PUBLIC }, schema: { body: signInBody, response: { 200: sessionView, ...errors } } },
    async (req, reply) => {
      const sessions = auth.sessions;
      if (!sessions) throw new HttpError(404, 'NOT_FOUND', 'sign-in is off on this dlq-manager');
      const who = auth.signIn(req.body.token);
      const { claims, csrfToken } = sessions.issue(reply, who.name, req.body.token);
      req.log.info({ name: who.name, role: who.role }, 'signed in');
      return {
        ...view({ ...who, via: 'session' }),
        expiresAt: new Date(claims.exp * 1000).toISOString(),
        csrfToken,
      };
    },
  );

  app.get(
    '/v1/session',
    { config: { access: 'viewer' }, schema: { response: { 200: sessionView, ...errors } } },
    async (req) => view(req.principal as Principal),
  );

  app.delete(
    '/v1/session',
    {
      config: { access: 'viewer' },
      schema: { response: { 200: { type: 'object', properties: { signedOut: { type: 'boolean' } } }, ...errors } },
    },
    async (req, reply) => {
      auth.sessions?.clear(reply);
      req.log.info({ name: req.principal?.name }, 'signed out');
      return { signedOut: true };
    },
  );
}
