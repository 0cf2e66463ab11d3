import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createHttpApp, createSessions, CSRF_HEADER, HttpError, PUBLIC, type RouteAuth } from '@redrive/http';

// Session cookies on the shared route guard: a cookie signed with the credential it came from,
// expiring, and a CSRF header on every change made with it.

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

let clock = Date.parse('2026-01-01T00:00:00Z');
const credentials = new Map([['alice', 'alice-secret-token-0001']]);
const sessions = createSessions({ secret: Buffer.alloc(32, 7), ttlMs: 3_600_000, now: () => clock, secure: true });

const auth: RouteAuth = {
  permissions: ['use'],
  principalOf: (req) => ({ name: sessions.verify(req, (n) => credentials.get(n)).claims.name }),
  authorize: () => undefined,
};

async function build() {
  app = createHttpApp({ logger: pino({ level: 'silent' }), auth });
  app.post<{ Body: { token: string } }>('/signin', { config: { access: PUBLIC } }, async (req, reply) => {
    const name = [...credentials].find(([, t]) => t === req.body.token)?.[0];
    if (!name) throw new HttpError(401, 'UNAUTHORIZED', 'no');
    return sessions.issue(reply, name, req.body.token);
  });
  app.get('/things', { config: { access: 'use' } }, async (req) => ({ by: req.principal?.name }));
  app.post('/things', { config: { access: 'use' } }, async (req) => ({ changedBy: req.principal?.name }));
  await app.ready();
  return app;
}

async function signIn(a: FastifyInstance) {
  const res = await a.inject({ method: 'POST', url: '/signin', payload: { token: 'alice-secret-token-0001' } });
  expect(res.statusCode).toBe(200);
  const setCookie = String(res.headers['set-cookie']);
  return { setCookie, cookie: setCookie.split(';')[0]!, csrf: (res.json() as { csrfToken: string }).csrfToken };
}

describe('session cookies', () => {
  it('are HttpOnly, SameSite=Strict and expire', async () => {
    const { setCookie } = await signIn(await build());
    expect(setCookie).toMatch(
      /^redrive_session=[^;]+\.[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600; Expires=/,
    );
    expect(setCookie).toMatch(/; Secure$/);
  });

  it('let reads through, and changes only with the CSRF token', async () => {
    const a = await build();
    const { cookie, csrf } = await signIn(a);
    expect((await a.inject({ method: 'GET', url: '/things', headers: { cookie } })).json()).toEqual({ by: 'alice' });
    const none = await a.inject({ method: 'POST', url: '/things', headers: { cookie }, payload: {} });
    expect(none.statusCode).toBe(403);
    expect(none.json()).toMatchObject({ code: 'CSRF_TOKEN_INVALID' });
    const wrong = await a.inject({
      method: 'POST',
      url: '/things',
      headers: { cookie, [CSRF_HEADER]: `${csrf}x` },
      payload: {},
    });
    expect(wrong.statusCode).toBe(403);
    const ok = await a.inject({
      method: 'POST',
      url: '/things',
      headers: { cookie, [CSRF_HEADER]: csrf },
      payload: {},
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ changedBy: 'alice' });
  });

  it('refuse a forged, expired or orphaned cookie', async () => {
    const a = await build();
    const { cookie } = await signIn(a);
    const [name, value] = cookie.split('=') as [string, string];
    const [body, sig] = value.split('.') as [string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), name: 'mallory' }),
    ).toString('base64url');
    for (const bad of [`${name}=${forged}.${sig}`, `${name}=${body}.${sig.slice(1)}`, `${name}=garbage`]) {
      const res = await a.inject({ method: 'GET', url: '/things', headers: { cookie: bad } });
      expect(res.statusCode, bad).toBe(401);
    }
    clock += 3_600_000;
    const expired = await a.inject({ method: 'GET', url: '/things', headers: { cookie } });
    expect(expired.statusCode).toBe(401);
    expect(expired.json().message).toMatch(/expired/);
    clock -= 3_600_000;
    // The credential it was made with is rotated: the session ends with it.
    credentials.set('alice', 'alice-secret-token-0002');
    try {
      expect((await a.inject({ method: 'GET', url: '/things', headers: { cookie } })).statusCode).toBe(401);
    } finally {
      credentials.set('alice', 'alice-secret-token-0001');
    }
  });
});
