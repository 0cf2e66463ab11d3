import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createHttpApp, HttpError, PUBLIC } from '@redrive/http';
import { memoryLogger } from './memory-logger.js';

const jobSchema = {
  type: 'object',
  required: ['type', 'priority'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
    priority: { type: 'string', enum: ['high', 'normal', 'low'] },
    delayMs: { type: 'integer', minimum: 0 },
    target: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
  },
} as const;

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(bodyLimit?: number) {
  const { logger, lines } = memoryLogger();
  app = createHttpApp({ logger, ...(bodyLimit !== undefined ? { bodyLimit } : {}) });
  // These routes test the HTTP conventions, not access: anyone may call them.
  const config = { access: PUBLIC };
  app.post('/jobs', { config, schema: { body: jobSchema } }, async (req) => ({ received: req.body }));
  app.get('/teapot', { config }, async () => {
    throw new HttpError(429, 'SLOW_DOWN', 'too many requests', { 'retry-after': '7' });
  });
  app.get('/boom', { config }, async () => {
    throw new Error('secret database detail');
  });
  await app.ready();
  return { app, lines };
}

function postJson(a: FastifyInstance, payload: string, headers: Record<string, string> = {}) {
  return a.inject({
    method: 'POST',
    url: '/jobs',
    payload,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function expectUniformBody(json: unknown, statusCode: number, code: string) {
  expect(Object.keys(json as object).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
  expect(json).toMatchObject({ statusCode, code });
  expect(typeof (json as { error: unknown }).error).toBe('string');
  expect(typeof (json as { message: unknown }).message).toBe('string');
}

describe('createHttpApp: schema validation', () => {
  it('accepts a valid body', async () => {
    const { app } = await build();
    const res = await postJson(app, JSON.stringify({ type: 'webhook', priority: 'high' }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: { type: 'webhook', priority: 'high' } });
  });

  it.each([
    ['a missing field', { type: 'webhook' }, 'body is missing the required field "priority"'],
    ['an unknown field', { type: 'webhook', priority: 'high', colour: 'red' }, 'body has an unknown field "colour"'],
    ['a wrong enum value', { type: 'webhook', priority: 'urgent' }, 'body.priority must be one of high, normal, low'],
    ['a wrong pattern', { type: 'Web Hook', priority: 'low' }, 'body.type must match ^[a-z0-9][a-z0-9_-]*$'],
    ['a string where an integer belongs', { type: 'x', priority: 'low', delayMs: '5' }, 'body.delayMs must be integer'],
    [
      'a field of a nested object',
      { type: 'x', priority: 'low', target: {} },
      'body.target is missing the required field "url"',
    ],
  ])('answers 400 naming the field for %s', async (_label, payload, message) => {
    const { app } = await build();
    const res = await postJson(app, JSON.stringify(payload));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request', message });
  });
});

describe('createHttpApp: what a body must be', () => {
  it.each([['text/plain'], ['application/x-www-form-urlencoded'], ['application/xml'], ['']])(
    'answers 415 naming the content type %j',
    async (type) => {
      const { app } = await build();
      const res = await app.inject({
        method: 'POST',
        url: '/jobs',
        payload: 'type=webhook',
        headers: type ? { 'content-type': type } : {},
      });
      expect(res.statusCode).toBe(415);
      const json = res.json<{ message: string }>();
      expectUniformBody(json, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(json.message).toContain(`"${type}"`);
      expect(json.message).toContain('application/json');
    },
  );

  it.each([['application/json; charset=utf-8'], ['Application/JSON']])('accepts JSON sent as %s', async (type) => {
    const { app } = await build();
    const res = await postJson(app, JSON.stringify({ type: 'webhook', priority: 'high' }), { 'content-type': type });
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['malformed JSON', '{"type": "webhook",'],
    ['not JSON at all', 'hello'],
    ['an empty body', ''],
  ])('answers 400 INVALID_JSON for %s sent as application/json', async (_label, payload) => {
    const { app } = await build();
    const res = await postJson(app, payload);
    expect(res.statusCode).toBe(400);
    expectUniformBody(res.json(), 400, 'INVALID_JSON');
    expect(res.json<{ message: string }>().message).toMatch(/^the body (is empty|is not valid JSON)/);
  });

  it('answers 413 for a body over bodyLimit, and accepts one at the limit', async () => {
    const { app } = await build(64);
    const fits = JSON.stringify({ type: 'x'.repeat(64 - 28), priority: 'low' });
    expect(Buffer.byteLength(fits)).toBe(64);
    expect((await postJson(app, fits)).statusCode).toBe(200);
    const res = await postJson(app, JSON.stringify({ type: 'x'.repeat(100), priority: 'low' }));
    expect(res.statusCode).toBe(413);
    expectUniformBody(res.json(), 413, 'BODY_TOO_LARGE');
  });
});

describe('createHttpApp: error bodies', () => {
  it.each([
    ['GET', '/nowhere?x=1'],
    ['DELETE', '/jobs'],
  ])('answers %s %s with a uniform 404 naming the route without its query', async (method, url) => {
    const { app } = await build();
    const res = await app.inject({ method: method as 'GET' | 'DELETE', url });
    expect(res.statusCode).toBe(404);
    expectUniformBody(res.json(), 404, 'NOT_FOUND');
    expect(res.json()).toEqual({
      statusCode: 404,
      code: 'NOT_FOUND',
      error: 'Not Found',
      message: `no route ${method} ${url.split('?')[0]}`,
    });
  });

  it('answers an HttpError with its status, code, message and headers', async () => {
    const { app } = await build();
    const res = await app.inject({ method: 'GET', url: '/teapot' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.json()).toEqual({
      statusCode: 429,
      code: 'SLOW_DOWN',
      error: 'Too Many Requests',
      message: 'too many requests',
    });
  });

  it('answers an unexpected error with a uniform 500 that does not leak its message, and logs it', async () => {
    const { app, lines } = await build();
    const res = await app.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).toBe(500);
    expectUniformBody(res.json(), 500, 'INTERNAL');
    expect(res.body).not.toContain('secret database detail');
    expect(lines.some((l) => l.msg === 'request failed' && l.level === 50)).toBe(true);
  });

  it('logs one line per request with method, url and status', async () => {
    const { app, lines } = await build();
    await app.inject({ method: 'GET', url: '/nowhere' });
    const requests = lines.filter((l) => l.msg === 'request');
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: 'GET', url: '/nowhere', status: 404 });
  });
});
