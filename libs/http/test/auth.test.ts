import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  createCredentialCheck,
  createHttpApp,
  HttpError,
  presentedKey,
  PUBLIC,
  routeTable,
  type RouteAuth,
} from '@redrive/http';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const check = createCredentialCheck(
  [
    { secret: 'k1', principal: { name: 'one', may: ['read'] } },
    { secret: 'k2', principal: { name: 'two', may: ['read', 'write'] } },
  ],
  { noun: 'API key', howToSend: 'send "Authorization: Bearer <key>"', challenge: 'Bearer' },
);

/** Reads and writes by key; `read`/`write` are the permissions routes may declare. */
const auth: RouteAuth<{ name: string; may: string[] }> = {
  permissions: ['read', 'write'],
  principalOf: (req: FastifyRequest) => check(presentedKey(req)),
  authorize: (p, need) => {
    if (!p.may.includes(need)) throw new HttpError(403, 'FORBIDDEN', `${p.name} may not ${need}`);
  },
};

async function build() {
  app = createHttpApp({ logger: pino({ level: 'silent' }), auth });
  app.get('/open', { config: { access: PUBLIC } }, async () => ({ ok: 'open' }));
  app.get('/things', { config: { access: 'read' } }, async (req) => ({ ok: 'read', by: req.principal?.name }));
  app.post('/things', { config: { access: 'write' } }, async () => ({ ok: 'write' }));
  // Declares nothing: fail closed.
  app.get('/forgotten', async () => ({ ok: 'forgotten' }));
  await app.ready();
  return app;
}

describe('the route guard', () => {
  it('lets anyone call a public route', async () => {
    const res = await (await build()).inject({ method: 'GET', url: '/open' });
    expect(res.statusCode).toBe(200);
  });

  it('checks the permission the matched route declares: 401, 403, then 200', async () => {
    const a = await build();
    expect((await a.inject({ method: 'GET', url: '/things' })).statusCode).toBe(401);
    expect((await a.inject({ method: 'POST', url: '/things', headers: { 'x-api-key': 'k1' } })).json()).toMatchObject({
      statusCode: 403,
      code: 'FORBIDDEN',
      message: 'one may not write',
    });
    const ok = await a.inject({ method: 'GET', url: '/things', headers: { authorization: 'Bearer k1' } });
    expect(ok.json()).toEqual({ ok: 'read', by: 'one' });
    expect((await a.inject({ method: 'POST', url: '/things', headers: { 'x-api-key': 'k2' } })).statusCode).toBe(200);
  });

  it('refuses a route that declares no access to everyone, the strongest key included', async () => {
    const a = await build();
    expect((await a.inject({ method: 'GET', url: '/forgotten' })).statusCode).toBe(401);
    const res = await a.inject({ method: 'GET', url: '/forgotten', headers: { 'x-api-key': 'k2' } });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ message: string }>().message).toBe(
      'GET /forgotten declares no access rule, so it answers nobody',
    );
  });

  it('decides on the route that matched, whatever the spelling of its path', async () => {
    const a = await build();
    // fastify decodes %74 to "t" and routes it to /things: the guard still applies.
    expect((await a.inject({ method: 'GET', url: '/%74hings', headers: { 'x-api-key': 'k1' } })).statusCode).toBe(200);
    expect((await a.inject({ method: 'GET', url: '/%74hings' })).statusCode).toBe(401);
    expect((await a.inject({ method: 'GET', url: '//things' })).statusCode).toBe(404);
  });

  it('without an auth, answers only public routes and takes no other access value', async () => {
    app = createHttpApp({ logger: pino({ level: 'silent' }) });
    app.get('/open', { config: { access: PUBLIC } }, async () => ({ ok: 'open' }));
    app.get('/forgotten', async () => ({ ok: 'forgotten' }));
    expect(() => app!.get('/things', { config: { access: 'read' } }, async () => ({}))).toThrow(
      /declares access "read"; expected one of public$/,
    );
    expect((await app.inject({ method: 'GET', url: '/open' })).statusCode).toBe(200);
    const res = await app.inject({ method: 'GET', url: '/forgotten', headers: { 'x-api-key': 'k2' } });
    expect(res.statusCode).toBe(401);
    expect(res.json<{ message: string }>().message).toContain('only its probes are public');
  });

  it('refuses to register a route whose access no one can hold', () => {
    app = createHttpApp({ logger: pino({ level: 'silent' }), auth });
    expect(() => app!.get('/typo', { config: { access: 'wirte' } }, async () => ({}))).toThrow(
      'route GET /typo declares access "wirte"; expected one of public, read, write',
    );
  });

  it("lists every route, fastify's HEAD routes included, with its access", async () => {
    const a = await build();
    expect(routeTable(a).map((r) => `${r.method} ${r.url} ${r.access ?? '-'}`)).toEqual([
      'GET /open public',
      'HEAD /open public',
      'GET /things read',
      'HEAD /things read',
      'POST /things write',
      'GET /forgotten -',
      'HEAD /forgotten -',
    ]);
  });
});

describe('the credential check', () => {
  async function key(headers: Record<string, string>) {
    const a = await build();
    return a.inject({ method: 'GET', url: '/things', headers });
  }

  it.each([
    ['Authorization: Bearer', { authorization: 'Bearer k2' }],
    ['a lower-case bearer scheme', { authorization: 'bearer k2' }],
    ['extra spaces', { authorization: '  Bearer   k2  ' }],
    ['X-Api-Key', { 'x-api-key': 'k1' }],
    ['X-Api-Key with spaces', { 'x-api-key': ' k1 ' }],
    // An ingress or proxy may put its own credentials in Authorization (Basic auth, say).
    [
      'a valid X-Api-Key next to another Authorization scheme',
      { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': 'k1' },
    ],
  ])('lets a request with a configured key through (%s)', async (_label, headers) => {
    const res = await key(headers);
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['no key', {}, 'an API key is required'],
    ['an empty X-Api-Key', { 'x-api-key': '' }, 'an API key is required'],
    ['a bearer scheme without a token', { authorization: 'Bearer' }, 'an API key is required'],
    ['a wrong bearer key', { authorization: 'Bearer k3' }, 'the API key is not valid'],
    ['a wrong X-Api-Key', { 'x-api-key': 'nope' }, 'the API key is not valid'],
    ['a prefix of a key', { 'x-api-key': 'k' }, 'the API key is not valid'],
    ['a key with a suffix', { 'x-api-key': 'k1x' }, 'the API key is not valid'],
    ['a key in a Basic header', { authorization: 'Basic k1' }, 'an API key is required'],
    ['two tokens', { authorization: 'Bearer k1 k2' }, 'an API key is required'],
  ])('answers 401 with a uniform body for %s', async (_label, headers, message) => {
    const res = await key(headers);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    const json = res.json<{ message: string }>();
    expect(Object.keys(json).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
    expect(json).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized' });
    expect(json.message).toContain(message);
  });

  it('refuses every secret when none is configured', () => {
    const none = createCredentialCheck([], { noun: 'bearer token', howToSend: '…', challenge: 'Bearer' });
    expect(() => none('anything')).toThrow(expect.objectContaining({ statusCode: 401 }));
    expect(() => none(undefined)).toThrow(/a bearer token is required/);
  });
});
