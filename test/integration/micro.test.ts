import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MicroError,
  MicroUnavailableError,
  requestMicro,
  startMicroService,
  type MicroServer,
} from '@redrive/messaging';
import { connectTestClient, uniquePrefix } from '@redrive/test-support';
import type { Logger } from 'pino';

// Redrive's one request/reply style (libs/messaging micro.ts), which the retry-scheduler and
// dlq-manager serve and intake calls: a micro service of JSON endpoints against the shared NATS,
// under a name and subjects of this file's own.

const prefix = uniquePrefix('micro');
const name = `redrive-test-${prefix}`;
const root = `${prefix}.svc`;
let nc: NatsConnection;
let server: MicroServer;
const logged: { obj: object; msg: string }[] = [];
const logger = {
  error: (obj: object, msg: string) => logged.push({ obj, msg }),
  info: () => undefined,
} as unknown as Logger;

class OwnError extends Error {}
let release: () => void = () => undefined;
let entered: () => void = () => undefined;

beforeAll(async () => {
  nc = await connectTestClient();
  server = await startMicroService(nc, {
    name,
    version: '1.2.3',
    description: 'a test service',
    metadata: { prefix },
    root,
    endpoints: {
      echo: { metadata: { change: 'false' }, run: async (req) => ({ got: req }) },
      missing: {
        run: async () => {
          throw new MicroError(404, 'NOT_FOUND', 'no such thing');
        },
      },
      own: {
        run: async () => {
          throw new OwnError('taken');
        },
      },
      broken: {
        run: async () => {
          throw new Error('secret database detail');
        },
      },
      odd: {
        run: async () => {
          throw new MicroError(418, 'TEAPOT', 'not one of the codes');
        },
      },
      slow: {
        run: async () => {
          entered();
          await new Promise<void>((r) => (release = r));
          return { done: true };
        },
      },
    },
    toMicroError: (err) => (err instanceof OwnError ? new MicroError(409, 'CONFLICT', err.message) : err),
    logger,
  });
});

afterAll(async () => {
  await server?.stop();
  await nc?.close();
});

const subject = (op: string) => `${root}.${op}`;

describe('a micro service of JSON endpoints', () => {
  it('answers JSON and is listed by the micro protocol with its endpoints and metadata', async () => {
    expect(await requestMicro(nc, subject('echo'), { a: 1 })).toEqual({ got: { a: 1 } });
    // An empty request is `{}`.
    const empty = await nc.request(subject('echo'), new Uint8Array(), { timeout: 5_000 });
    expect(empty.json()).toEqual({ got: {} });

    const info = (await nc.request(`$SRV.INFO.${name}`, '', { timeout: 5_000 })).json<{
      name: string;
      version: string;
      metadata: Record<string, string>;
      endpoints: { name: string; subject: string; queue_group: string; metadata?: Record<string, string> }[];
    }>();
    expect(info).toMatchObject({ name, version: '1.2.3', metadata: { prefix } });
    expect(info.endpoints.map((e) => e.subject).sort()).toEqual(
      ['broken', 'echo', 'missing', 'odd', 'own', 'slow'].map(subject).sort(),
    );
    // Replicas share one queue group: one of them answers each request.
    expect(new Set(info.endpoints.map((e) => e.queue_group))).toEqual(new Set([name]));
    expect(info.endpoints.find((e) => e.name === 'echo')?.metadata).toEqual({ change: 'false' });

    const stats = (await nc.request(`$SRV.STATS.${name}`, '', { timeout: 5_000 })).json<{
      endpoints: { name: string; num_requests: number }[];
    }>();
    expect(stats.endpoints.find((e) => e.name === 'echo')?.num_requests).toBe(2);
  });

  it('answers a typed refusal as a micro error, which the caller gets back typed, with its code', async () => {
    const raw = await nc.request(subject('missing'), '{}', { timeout: 5_000 });
    expect(raw.headers?.get('Nats-Service-Error-Code')).toBe('404');
    expect(raw.headers?.get('Nats-Service-Error')).toBe('no such thing');
    expect(raw.json()).toEqual({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no such thing' });

    const err = await requestMicro(nc, subject('missing'), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MicroError);
    expect(err).toMatchObject({ statusCode: 404, code: 'NOT_FOUND', message: 'no such thing' });
  });

  it("maps the service's own errors with toMicroError", async () => {
    const err = await requestMicro(nc, subject('own'), {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 409, code: 'CONFLICT', message: 'taken' });
  });

  it('refuses a request that is not JSON with 400 INVALID_JSON before the endpoint runs', async () => {
    const raw = await nc.request(subject('echo'), '{not json', { timeout: 5_000 });
    expect(raw.headers?.get('Nats-Service-Error-Code')).toBe('400');
    expect(raw.json()).toMatchObject({ statusCode: 400, code: 'INVALID_JSON' });
  });

  it('answers any other error 500 INTERNAL without its text, and logs it', async () => {
    const err = await requestMicro(nc, subject('broken'), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MicroError);
    expect(err).toMatchObject({ statusCode: 500, code: 'INTERNAL' });
    expect((err as Error).message).not.toMatch(/secret/);
    expect(
      logged.some(
        (l) => l.msg === 'NATS request failed' && (l.obj as { err?: Error }).err?.message === 'secret database detail',
      ),
    ).toBe(true);
  });

  it('lets only the codes a caller knows through as MicroErrors', async () => {
    const codes = ['NOT_FOUND', 'INTERNAL'] as const;
    const known = await requestMicro(nc, subject('missing'), {}, { codes }).catch((e: unknown) => e);
    expect(known).toMatchObject({ code: 'NOT_FOUND' });
    const unknown = await requestMicro(nc, subject('odd'), {}, { codes }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(Error);
    expect(unknown).not.toBeInstanceOf(MicroError);
    expect((unknown as Error).message).toMatch(/unknown error code TEAPOT/);
  });

  it('is unavailable where nothing answers', async () => {
    const err = await requestMicro(nc, subject('nobody-here'), {}, { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MicroUnavailableError);
  });

  it('stops taking requests but answers the ones in progress first', async () => {
    const inside = new Promise<void>((r) => (entered = r));
    const answer = requestMicro(nc, subject('slow'), {}, { timeoutMs: 10_000 });
    await inside;
    let stopped = false;
    const stopping = server.stop().then(() => {
      stopped = true;
    });
    // The subscriptions are drained, but an answer is still owed: stop must not resolve before it is sent.
    await server.service.stopped;
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(await answer).toEqual({ done: true });
    const after = await requestMicro(nc, subject('echo'), {}, { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(after).toBeInstanceOf(MicroUnavailableError);
  });
});
