import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createHttpApp, createKeyCheck } from '@redrive/http';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(keys: readonly string[]) {
  app = createHttpApp({ logger: pino({ level: 'silent' }) });
  const check = createKeyCheck(keys);
  app.addHook('preHandler', async (req) => check(req));
  app.get('/private', async () => ({ ok: true }));
  await app.ready();
  return app;
}

describe('createKeyCheck', () => {
  it.each([
    ['no credentials', {}],
    ['an arbitrary bearer token', { authorization: 'Bearer anything' }],
  ])('lets every request through when no keys are configured: %s', async (_label, headers) => {
    const res = await (await build([])).inject({ method: 'GET', url: '/private', headers });
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['Authorization: Bearer', { authorization: 'Bearer k2' }],
    ['a lower-case bearer scheme', { authorization: 'bearer k2' }],
    ['extra spaces', { authorization: '  Bearer   k2  ' }],
    ['X-Api-Key', { 'x-api-key': 'k1' }],
    ['X-Api-Key with spaces', { 'x-api-key': ' k1 ' }],
  ])('lets a request with a configured key through (%s)', async (_label, headers) => {
    const res = await (await build(['k1', 'k2'])).inject({ method: 'GET', url: '/private', headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
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
  ])('answers 401 with a uniform body for %s', async (_label, headers, message) => {
    const res = await (await build(['k1', 'k2'])).inject({ method: 'GET', url: '/private', headers });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    const json = res.json<{ message: string }>();
    expect(Object.keys(json).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
    expect(json).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized' });
    expect(json.message).toContain(message);
  });

  // An ingress or proxy may put its own credentials in Authorization (Basic auth, an OIDC
  // token); a request that also carries a valid X-Api-Key still presents a Redrive key.
  it('accepts a valid X-Api-Key when Authorization carries another scheme', async () => {
    const res = await (
      await build(['k1'])
    ).inject({
      method: 'GET',
      url: '/private',
      headers: { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': 'k1' },
    });
    expect(res.statusCode).toBe(200);
  });
});
