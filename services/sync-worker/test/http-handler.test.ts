import { createHmac } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HttpStatusError, NonRetryableError, ValidationError } from '@redrive/sdk';
import { classify } from '@redrive/retry-policy';
import { context, startTelemetry, trace, type Telemetry } from '@redrive/telemetry';
import {
  ANY_PUBLIC_ORIGIN,
  BlockedAddressError,
  createHttpHandler,
  createHttpHandlers,
  DisallowedUrlError,
  HttpRoute,
  signingKeyFor,
  verifyWebhookSignature,
  type HttpHandlerSettings,
  type HttpTypeSettings,
} from '../src/handlers/http.js';
import { ctxOf, failureOf, jobOf, socketsOpenedDuring } from './http-support.js';

// Every test talks to real HTTP servers on 127.0.0.1, which the handler reaches only because
// the settings list their origins as internal origins of the job type; nothing about HTTP is mocked.

const SECRET_KEY = Buffer.from('redrive-test-signing-key-0123456789');
const SECRET = `whsec_${SECRET_KEY.toString('base64')}`;

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Responder = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

interface TestServer {
  origin: string;
  port: number;
  received: Received[];
  /** TCP connections accepted, whether or not a request followed. */
  connections: number;
  respond: Responder;
  close(): Promise<void>;
}

const servers: TestServer[] = [];

async function startServer(respond: Responder = (_q, res) => res.writeHead(204).end()): Promise<TestServer> {
  const server: Server = createServer();
  const ts: TestServer = {
    origin: '',
    port: 0,
    received: [],
    connections: 0,
    respond,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => ts.connections++);
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      ts.received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      ts.respond(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ts.port = (server.address() as AddressInfo).port;
  ts.origin = `http://127.0.0.1:${ts.port}`;
  servers.push(ts);
  return ts;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface TestOptions {
  timeoutMs?: number;
  /** The secret of the fixed target's origin. */
  secret?: string;
  signingSecrets?: Record<string, string>;
  /** More job types. */
  types?: Record<string, HttpTypeSettings>;
}

function settingsOf(http: HttpTypeSettings, opts: TestOptions = {}): HttpHandlerSettings {
  return {
    timeoutMs: opts.timeoutMs ?? 5_000,
    types: { http, ...opts.types },
    signingSecrets: opts.signingSecrets ?? {},
  };
}

/** Settings whose `http` type has the fixed target `url`, a loopback test server and so listed as internal. */
function fixed(url: string, opts: TestOptions = {}): HttpHandlerSettings {
  const origin = new URL(url).origin;
  return settingsOf(
    { target: url, internalOrigins: [origin] },
    { ...opts, signingSecrets: { ...opts.signingSecrets, ...(opts.secret ? { [origin]: opts.secret } : {}) } },
  );
}

/** Settings whose `http` type takes envelopes to these loopback origins (listed as internal). */
function envelopes(
  origins: readonly string[],
  opts: TestOptions & { secretHeaders?: string[]; anyPublic?: boolean } = {},
): HttpHandlerSettings {
  return settingsOf(
    {
      internalOrigins: [...origins],
      ...(opts.anyPublic ? { origins: [ANY_PUBLIC_ORIGIN] } : {}),
      ...(opts.secretHeaders ? { secretHeaders: opts.secretHeaders } : {}),
    },
    opts,
  );
}

/** The receiver's own check, written from the Standard Webhooks spec rather than with the handler's code. */
function expectedSignature(key: Buffer, headers: IncomingHttpHeaders, body: Buffer): string {
  const signed = Buffer.concat([Buffer.from(`${headers['webhook-id']}.${headers['webhook-timestamp']}.`), body]);
  return `v1,${createHmac('sha256', key).update(signed).digest('base64')}`;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('http handler: what it sends', () => {
  it('POSTs the raw payload byte for byte to the default target, signed so the receiver can verify it', async () => {
    const srv = await startServer();
    const handler = createHttpHandler(fixed(`${srv.origin}/hooks?x=1`, { secret: SECRET }));
    // Whitespace and non-ASCII text must survive untouched: the signature covers the exact bytes.
    const rawText = '{ "event": "order.paid",\n  "name": "Zoë ✓", "amount": 12.50 }';
    const job = jobOf(JSON.parse(rawText), { rawText, attempt: 3 });
    const before = Math.floor(Date.now() / 1000);

    const result = await handler.handle(job, ctxOf());

    expect(result).toMatchObject({ status: 204, redirects: 0 });
    expect(srv.received).toHaveLength(1);
    const got = srv.received[0]!;
    expect(got.method).toBe('POST');
    expect(got.path).toBe('/hooks?x=1');
    expect(got.body.equals(Buffer.from(rawText))).toBe(true);
    expect(got.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'redrive/0.1',
      'redrive-job-id': job.id,
      'redrive-attempt': '3',
      'webhook-id': job.id,
    });
    const ts = Number(got.headers['webhook-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(got.headers['webhook-signature']).toBe(expectedSignature(SECRET_KEY, got.headers, got.body));
    expect(verifyWebhookSignature(SECRET, got.headers, got.body, 60)).toBe(job.id);
  });

  it('keeps webhook-id stable across attempts so receivers can drop duplicates', async () => {
    const srv = await startServer();
    const handler = createHttpHandler(fixed(srv.origin, { secret: SECRET }));
    const job = jobOf({ n: 1 });
    await handler.handle(job, ctxOf());
    await handler.handle({ ...job, attempt: 2 }, ctxOf());
    expect(srv.received.map((r) => r.headers['webhook-id'])).toEqual([job.id, job.id]);
    expect(srv.received.map((r) => r.headers['redrive-attempt'])).toEqual(['1', '2']);
  });

  it("sends an envelope body JSON-encoded to the envelope url with its headers, signed with that origin's secret", async () => {
    const srv = await startServer();
    const handler = createHttpHandler(envelopes([srv.origin], { signingSecrets: { [srv.origin]: SECRET } }));
    const body = { event: 'user.created', user: { id: 7, tags: ['a', 'b'] }, note: null };
    const job = jobOf({
      url: `${srv.origin}/in/events#ignored`,
      body,
      headers: { 'X-Tenant': 'acme', Authorization: 'Bearer t0k3n', 'Content-Type': 'application/cloudevents+json' },
    });

    await handler.handle(job, ctxOf());

    const got = srv.received[0]!;
    expect(got.path).toBe('/in/events');
    expect(got.body.toString()).toBe(JSON.stringify(body));
    expect(got.headers).toMatchObject({
      'x-tenant': 'acme',
      authorization: 'Bearer t0k3n',
      'content-type': 'application/cloudevents+json',
    });
    expect(got.headers['webhook-signature']).toBe(expectedSignature(SECRET_KEY, got.headers, got.body));
  });

  it('signs each send with the secret of its exact origin, and sends unsigned to an origin without one', async () => {
    const a = await startServer();
    const b = await startServer();
    const unsigned = await startServer();
    const bKey = Buffer.from('another key for one origin');
    const handler = createHttpHandler(
      envelopes([a.origin, b.origin, unsigned.origin], {
        signingSecrets: { [a.origin]: SECRET, [b.origin]: `whsec_${bKey.toString('base64')}` },
      }),
    );
    await handler.handle(jobOf({ url: `${a.origin}/a`, body: 1 }), ctxOf());
    await handler.handle(jobOf({ url: `${b.origin}/b`, body: 2 }), ctxOf());
    await handler.handle(jobOf({ url: `${unsigned.origin}/c`, body: 3 }), ctxOf());
    const [ra, rb, ru] = [a.received[0]!, b.received[0]!, unsigned.received[0]!];
    expect(ra.headers['webhook-signature']).toBe(expectedSignature(SECRET_KEY, ra.headers, ra.body));
    expect(rb.headers['webhook-signature']).toBe(expectedSignature(bKey, rb.headers, rb.body));
    expect(ru.headers['webhook-signature']).toBeUndefined();
    expect(ru.headers['webhook-timestamp']).toBeUndefined();
    expect(ru.headers['redrive-job-id']).toBeDefined();
  });

  it('serves each configured type with its own target', async () => {
    const main = await startServer();
    const billing = await startServer();
    const handlers = createHttpHandlers(
      fixed(main.origin, {
        types: { 'billing-hook': { target: `${billing.origin}/billing`, internalOrigins: [billing.origin] } },
      }),
    );
    expect(handlers.map((h) => h.type)).toEqual(['http', 'billing-hook']);
    const [http, bill] = handlers as [(typeof handlers)[0], (typeof handlers)[0]];
    await bill.handle(jobOf({ invoice: 1 }, { type: 'billing-hook' }), ctxOf());
    await http.handle(jobOf({ n: 2 }), ctxOf());
    expect(billing.received.map((r) => [r.path, r.body.toString()])).toEqual([['/billing', '{"invoice":1}']]);
    expect(main.received.map((r) => r.body.toString())).toEqual(['{"n":2}']);
  });

  it('rejects a payload that is not an envelope when the type has no fixed target, as a validation error', async () => {
    const handler = createHttpHandler(envelopes(['http://127.0.0.1:1']));
    const err = await failureOf(handler.handle(jobOf({ event: 'x' }), ctxOf()));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(/no fixed target.*not an envelope/);
  });

  it('rejects envelopes with a bad url or headers it may not set', async () => {
    const handler = createHttpHandler(envelopes(['http://127.0.0.1']));
    const cases: [unknown, string][] = [
      [{ url: 'ftp://example.com/x', body: {} }, 'url'],
      [{ url: 42, body: {} }, 'url'],
      [{ url: 'http://user:pw@127.0.0.1/', body: {} }, 'url'],
      [{ url: 'http://127.0.0.1/', body: {}, headers: ['x'] }, 'headers'],
      [
        { url: 'http://127.0.0.1/', body: {}, headers: { 'webhook-signature': 'v1,forged' } },
        'headers.webhook-signature',
      ],
      [{ url: 'http://127.0.0.1/', body: {}, headers: { 'Redrive-Job-Id': 'other' } }, 'headers.Redrive-Job-Id'],
      [{ url: 'http://127.0.0.1/', body: {}, headers: { 'content-length': '1' } }, 'headers.content-length'],
      [{ url: 'http://127.0.0.1/', body: {}, headers: { 'x-a': 'line\r\nInjected: 1' } }, 'headers.x-a'],
      [{ url: 'http://127.0.0.1/', body: {}, headers: { 'bad name': 'v' } }, 'headers.bad name'],
      [{ url: 'http://127.0.0.1/', body: {}, headers: { 'x-n': 1 } }, 'headers.x-n'],
    ];
    for (const [payload, path] of cases) {
      const err = await failureOf(handler.handle(jobOf(payload), ctxOf()));
      expect(err, JSON.stringify(payload)).toBeInstanceOf(ValidationError);
      expect((err as unknown as ValidationError).path).toBe(path);
    }
  });

  it('treats an object with keys besides url, body and headers as a raw payload for the default target', async () => {
    const srv = await startServer();
    const payload = { url: 'https://example.com/avatar.png', body: 'hello', kind: 'profile' };
    await createHttpHandler(fixed(srv.origin)).handle(jobOf(payload), ctxOf());
    expect(JSON.parse(srv.received[0]!.body.toString())).toEqual(payload);
  });
});

describe('http handler: where each type may send, and with which secret', () => {
  it('refuses an envelope naming a URL for a type with a fixed target: validation, never sent, never signed', async () => {
    const target = await startServer();
    const elsewhere = await startServer();
    const handlers = createHttpHandlers(
      fixed(`${target.origin}/hook`, {
        secret: SECRET,
        // Another type names `elsewhere`, with a secret of its own: still not this type's to use.
        types: { other: { internalOrigins: [elsewhere.origin] } },
        signingSecrets: { [elsewhere.origin]: SECRET },
      }),
    );
    const http = handlers[0]!;
    for (const url of [`${elsewhere.origin}/forged`, `${target.origin}/hook`, 'https://example.com/']) {
      const err = await failureOf(http.handle(jobOf({ url, body: { forged: true } }), ctxOf()));
      expect(err, url).toBeInstanceOf(DisallowedUrlError);
      expect(err.message).toMatch(/sends to its fixed target only/);
      expect(classify(err)).toMatchObject({ errorClass: 'validation', retryable: false });
    }
    expect(target.connections + elsewhere.connections).toBe(0);
  });

  it('refuses a URL on an origin its type does not name, even one whose secret another type uses', async () => {
    const mine = await startServer();
    const billing = await startServer();
    const handlers = createHttpHandlers(
      envelopes([mine.origin], {
        signingSecrets: { [billing.origin]: SECRET },
        types: { billing: { target: billing.origin, internalOrigins: [billing.origin] } },
      }),
    );
    const http = handlers[0]!;
    let err = new Error('not run') as Error & Record<string, unknown>;
    const sockets = await socketsOpenedDuring(async () => {
      err = await failureOf(http.handle(jobOf({ url: `${billing.origin}/in`, body: { paid: true } }), ctxOf()));
    });
    expect(err).toBeInstanceOf(DisallowedUrlError);
    expect(err.message).toBe(`job type "http" does not send to ${billing.origin} (it sends to ${mine.origin})`);
    expect(classify(err)).toMatchObject({ errorClass: 'validation', retryable: false });
    expect(sockets).toBe(0);
    expect(billing.connections).toBe(0);
  });

  it('signs only for origins the type names; a URL reached through `*` is never signed', () => {
    const keys = new Map([
      ['https://named.example.com', Buffer.from('named')],
      ['https://billing.example.com', Buffer.from('billing')],
    ]);
    const open = new HttpRoute('hooks', { origins: [ANY_PUBLIC_ORIGIN, 'https://named.example.com'] });
    expect(signingKeyFor(open, new URL('https://named.example.com/x'), keys)?.toString()).toBe('named');
    expect(signingKeyFor(open, new URL('https://NAMED.example.com:443/y?z'), keys)?.toString()).toBe('named');
    // Reachable through `*`, and has a secret, but not one this type names.
    expect(open.reach(new URL('https://billing.example.com/in'))).toBe('public');
    expect(signingKeyFor(open, new URL('https://billing.example.com/in'), keys)).toBeUndefined();
    // Same host, other scheme or port: another origin.
    expect(signingKeyFor(open, new URL('http://named.example.com/x'), keys)).toBeUndefined();
    expect(signingKeyFor(open, new URL('https://named.example.com:8443/x'), keys)).toBeUndefined();
    const billing = new HttpRoute('billing', { target: 'https://billing.example.com/in' });
    expect(signingKeyFor(billing, new URL('https://billing.example.com/other'), keys)?.toString()).toBe('billing');
    expect(signingKeyFor(billing, new URL('https://named.example.com/x'), keys)).toBeUndefined();
  });

  it('lets only an internal origin redirect to an internal origin', () => {
    const route = new HttpRoute('hooks', {
      origins: [ANY_PUBLIC_ORIGIN, 'https://partner.example.com'],
      internalOrigins: ['http://10.0.0.8:8080', 'http://10.0.0.9:8080'],
    });
    const internal = new URL('http://10.0.0.8:8080/admin');
    expect(route.check(internal)).toBe('named');
    expect(route.check(internal, new URL('http://10.0.0.9:8080/old'))).toBe('named');
    for (const from of ['https://partner.example.com/hook', 'https://anyone.example.net/']) {
      expect(() => route.check(internal, new URL(from))).toThrow(DisallowedUrlError);
      expect(() => route.check(internal, new URL(from))).toThrow(
        /only a redirect from another of its internal origins/,
      );
    }
    expect(route.check(new URL('https://partner.example.com/b'), internal)).toBe('named');
  });

  it('refuses settings that would let a type send where it was not configured to', () => {
    const cases: [HttpTypeSettings, RegExp][] = [
      [{ target: 'https://a.example.com/', origins: ['https://b.example.com'] }, /one or the other/],
      [{}, /neither a fixed "target" nor "origins"/],
      [{ origins: ['https://a.example.com/path'] }, /not an origin/],
      [{ internalOrigins: ['*'] }, /one by one/],
      [{ target: 'https://a.example.com/x', internalOrigins: ['https://b.example.com'] }, /not the origin of/],
      [{ origins: ['*'], secretHeaders: ['bad header'] }, /not a header name/],
    ];
    for (const [rule, problem] of cases) {
      expect(() => createHttpHandlers(settingsOf(rule)), JSON.stringify(rule)).toThrow(problem);
    }
  });
});

describe('http handler: trace context', () => {
  let telemetry: Telemetry | undefined;
  afterAll(async () => {
    await telemetry?.shutdown();
  });

  it('forwards the traceparent the job arrived with when no span is active', async () => {
    const srv = await startServer();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const job = jobOf({ a: 1 }, { headers: { traceparent, 'Nats-Msg-Id': 'x' } });
    await createHttpHandler(fixed(srv.origin)).handle(job, ctxOf());
    expect(srv.received[0]!.headers.traceparent).toBe(traceparent);
  });

  it('sends the traceparent of the active OpenTelemetry span', async () => {
    telemetry = await startTelemetry({ serviceName: 'http-handler-test', env: {} });
    const srv = await startServer();
    const handler = createHttpHandler(fixed(srv.origin));
    const spanContext = {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1, // sampled
      isRemote: false,
    };
    const job = jobOf(
      { a: 1 },
      { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } },
    );
    await context.with(trace.setSpanContext(context.active(), spanContext), () => handler.handle(job, ctxOf()));
    expect(srv.received[0]!.headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });
});

describe('http handler: answers and failures', () => {
  it('succeeds on any 2xx', async () => {
    for (const status of [200, 201, 202, 204, 299]) {
      const srv = await startServer((_q, res) => res.writeHead(status).end(status === 204 ? undefined : 'ok'));
      const result = await createHttpHandler(fixed(srv.origin)).handle(jobOf({}), ctxOf());
      expect(result).toMatchObject({ status });
    }
  });

  it('fails a 500 with HttpStatusError 500, naming the origin only and quoting the body', async () => {
    const srv = await startServer((_q, res) => res.writeHead(500).end('database\nis down'));
    const handler = createHttpHandler(fixed(`${srv.origin}/hook?token=secret`));
    const err = await failureOf(handler.handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ status: 500, url: srv.origin, retryAfter: undefined });
    expect(err.message).toBe(`${srv.origin} answered HTTP 500: database is down`);
    expect(err.message).not.toContain('secret');
  });

  it('fails a 429 with the Retry-After it sent', async () => {
    const srv = await startServer((_q, res) => res.writeHead(429, { 'retry-after': '2' }).end());
    const err = await failureOf(createHttpHandler(fixed(srv.origin)).handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ status: 429, retryAfter: '2' });
  });

  it('fails a 400 with its status, for the retry policy to give up on', async () => {
    const srv = await startServer((_q, res) => res.writeHead(400).end('{"error":"bad"}'));
    const err = await failureOf(createHttpHandler(fixed(srv.origin)).handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err).toMatchObject({ status: 400 });
  });

  it('reads at most 64 KiB of an endless response and closes the connection', async () => {
    for (const status of [200, 502]) {
      let written = 0;
      let closed = false;
      const srv = await startServer((_q, res) => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.on('close', () => (closed = true));
        const chunk = Buffer.alloc(16 * 1024, 'x');
        // Writes until the client goes away, honouring backpressure; bounded so a broken
        // handler cannot make the test run away.
        const pump = () => {
          while (!closed && written < 64 * 1024 * 1024) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        pump();
      });
      const handler = createHttpHandler(fixed(srv.origin));
      const outcome = await Promise.resolve(handler.handle(jobOf({}), ctxOf())).then(
        (r) => r,
        (e: unknown) => e,
      );
      if (status === 200) {
        expect(outcome).toMatchObject({ status: 200 });
      } else {
        expect(outcome).toBeInstanceOf(HttpStatusError);
        expect((outcome as Error).message.length).toBeLessThan(1_000);
      }
      await expect.poll(() => closed, { timeout: 5_000 }).toBe(true);
      expect(written).toBeLessThan(64 * 1024 * 1024);
    }
  });

  it('gives up after HTTP_TIMEOUT with a timeout error when the target never answers', async () => {
    const srv = await startServer(() => undefined);
    const handler = createHttpHandler(fixed(srv.origin, { timeoutMs: 300 }));
    const started = performance.now();
    const err = await failureOf(handler.handle(jobOf({}), ctxOf()));
    const elapsed = performance.now() - started;
    expect(err.name).toBe('TimeoutError');
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.message).toContain('300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3_000);
    expect(handler.timeoutMs).toBe(1_300);
  });

  it('stops at once when the job is aborted, with the abort reason', async () => {
    const srv = await startServer(() => undefined);
    const handler = createHttpHandler(fixed(srv.origin, { timeoutMs: 10_000 }));
    const abort = new AbortController();
    const reason = new Error('worker is shutting down');
    const pending = failureOf(handler.handle(jobOf({}), ctxOf(abort.signal)));
    await expect.poll(() => srv.received.length).toBe(1);
    const started = performance.now();
    abort.abort(reason);
    expect(await pending).toBe(reason);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('fails a connection to a closed port with code ECONNREFUSED and the original error as cause', async () => {
    const port = await closedPort();
    const handler = createHttpHandler(fixed(`http://127.0.0.1:${port}/x`));
    const err = await failureOf(handler.handle(jobOf({}), ctxOf()));
    expect(err.code).toBe('ECONNREFUSED');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(err.message).toContain(`POST http://127.0.0.1:${port} failed`);
    expect(err.message).not.toContain('/x');
  });

  it('checks the certificate of an https target against the host name, though it connects to a pinned address', async () => {
    // A self-signed certificate for localhost and 127.0.0.1, made for this test only (valid until 2126).
    const tlsOptions = {
      key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmMIxaLaiLftTiJ/e
cMb/p8fYw9QeGvofZ5Wq31T2LYihRANCAARVXcsPXdZL7jff7N6KpCG2vokcRCdA
/cUTiFGc++R0mq14D0/yM8k0Pyog9OvCBad5pQb+4rnFka0wSmtjGIQg
-----END PRIVATE KEY-----`,
      cert: `-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUEe0sw7kQQqC82KcGrmiyvVKcYQswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTExNTgzOFoYDzIxMjYxMTAx
MTE1ODM4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARVXcsPXdZL7jff7N6KpCG2vokcRCdA/cUTiFGc++R0mq14D0/yM8k0
Pyog9OvCBad5pQb+4rnFka0wSmtjGIQgo28wbTAdBgNVHQ4EFgQUkP06x2dCotLi
B08v2hGxLA3X2JswHwYDVR0jBBgwFoAUkP06x2dCotLiB08v2hGxLA3X2JswDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgevzASATPvL02ehhNDaLvixPqOogVB0pLgvFZ6G6++doCIEif
1x7dBPUJee9bX6ffS2HV1XUPltBRLy7X+Nvnc9+/
-----END CERTIFICATE-----`,
    };
    const serverNames: string[] = [];
    let requests = 0;
    const server = createHttpsServer({
      ...tlsOptions,
      SNICallback: (name, cb) => {
        serverNames.push(name);
        cb(null, createSecureContext(tlsOptions));
      },
    });
    server.on('request', (_q, res: ServerResponse) => {
      requests++;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const handler = createHttpHandler(envelopes([`https://localhost:${port}`]));
      const err = await failureOf(handler.handle(jobOf({ url: `https://localhost:${port}/`, body: {} }), ctxOf()));
      // Not in the system's trust store: verification is on, and the failure keeps its TLS code.
      expect(err.code).toMatch(/SELF_SIGNED/);
      expect(serverNames).toEqual(['localhost']);
      expect(requests).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('http handler: webhook URLs in errors and logs', () => {
  // Slack- and Discord-style hooks carry their secret in the path: what the handler says about
  // a delivery (errors, which become DLQ headers and audit events, logs and results) names
  // the origin only, whatever happened.
  const SECRET_PATH = '/services/T0001/B0002/s3cr3tH00kT0ken';

  it('names only the origin whatever the outcome', async () => {
    const port = await closedPort();
    const slow = await startServer(() => undefined);
    const srv = await startServer((req, res) => {
      const [, , , , , kind] = (req.url ?? '').split('/');
      const to = `${srv.origin}${SECRET_PATH}/after-redirect?token=s3cr3t`;
      if (kind?.startsWith('ok')) res.writeHead(204).end();
      else if (kind?.startsWith('moved')) res.writeHead(301, { location: to }).end();
      else if (kind?.startsWith('follow')) res.writeHead(307, { location: `${SECRET_PATH}/ok?token=s3cr3t` }).end();
      else if (kind?.startsWith('loop')) res.writeHead(307, { location: req.url }).end();
      else if (kind?.startsWith('bad-location')) res.writeHead(307, { location: `http://[${SECRET_PATH}` }).end();
      else res.writeHead(500).end('nope');
    });
    const handler = createHttpHandler(
      envelopes([srv.origin, slow.origin, `http://127.0.0.1:${port}`], { timeoutMs: 300, anyPublic: true }),
    );
    const told: unknown[] = [];
    for (const url of [
      `${srv.origin}${SECRET_PATH}/ok`,
      `${srv.origin}${SECRET_PATH}/follow`,
      `${srv.origin}${SECRET_PATH}/moved`,
      `${srv.origin}${SECRET_PATH}/loop`,
      `${srv.origin}${SECRET_PATH}/bad-location`,
      `${srv.origin}${SECRET_PATH}/fail?token=s3cr3t`,
      `${slow.origin}${SECRET_PATH}`,
      `http://127.0.0.1:${port}${SECRET_PATH}`,
      `http://10.1.2.3${SECRET_PATH}`,
    ]) {
      const ctx = ctxOf();
      const outcome = await Promise.resolve(handler.handle(jobOf({ url, body: {} }), ctx)).then(
        (r) => r,
        (e: Error) => ({ error: e.message, ...e }),
      );
      told.push(outcome, ctx.logs);
    }
    const text = JSON.stringify(told);
    expect(text).toContain(srv.origin);
    expect(text).toContain('answered HTTP 301');
    expect(text).toContain('redirected to an invalid URL');
    expect(text).toContain('http target redirected');
    expect(text).not.toMatch(/s3cr3t|T0001|services\//);
  });
});

describe('http handler: SSRF protection', () => {
  it('refuses a loopback target that is not an internal origin of its type before connecting', async () => {
    const srv = await startServer();
    const handler = createHttpHandler(settingsOf({ target: `${srv.origin}/x` }));
    const err = await failureOf(handler.handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err).toBeInstanceOf(BlockedAddressError);
    expect(err.message).toContain('127.0.0.1');
    expect(err.message).toContain('loopback');
    expect(srv.connections).toBe(0);
    expect(srv.received).toHaveLength(0);
    // Dead-lettered at once with a class that says what happened, never retried as `unknown`.
    expect(classify(err)).toMatchObject({ errorClass: 'validation', retryable: false });
  });

  it('refuses private, link-local, loopback and unspecified addresses without attempting a connection', async () => {
    const handler = createHttpHandler(settingsOf({ origins: [ANY_PUBLIC_ORIGIN] }));
    const targets: [string, string, string][] = [
      ['http://10.0.0.1/hook', '10.0.0.1', 'private'],
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'link-local'],
      ['http://[::1]:8080/', '::1', 'loopback'],
      ['https://192.168.1.20/', '192.168.1.20', 'private'],
      ['http://172.20.0.5/', '172.20.0.5', 'private'],
      ['http://0.0.0.0:9090/', '0.0.0.0', 'unspecified'],
      ['http://[::]/', '::', 'unspecified'],
      ['http://[fe80::1]/', 'fe80::1', 'link-local'],
      ['http://[fd00:ec2::254]/', 'fd00:ec2::254', 'private'],
      ['http://[::ffff:169.254.169.254]/', '::ffff:a9fe:a9fe', 'link-local'],
      ['http://[::ffff:10.1.2.3]/', '::ffff:a01:203', 'private'],
      // NAT64, 6to4 and IPv4-compatible forms of the metadata address, and the special IPv4 blocks.
      ['http://[64:ff9b::169.254.169.254]/', '64:ff9b::a9fe:a9fe', 'NAT64'],
      ['http://[64:ff9b:1::a9fe:a9fe]/', '64:ff9b:1::a9fe:a9fe', 'NAT64'],
      ['http://[2002:a9fe:a9fe::]/', '2002:a9fe:a9fe::', '6to4'],
      ['http://[::169.254.169.254]/', '::a9fe:a9fe', 'IPv4-compatible'],
      ['http://[fec0::1]/', 'fec0::1', 'site-local'],
      ['http://192.0.0.170/', '192.0.0.170', 'reserved (special-purpose)'],
      ['http://198.18.0.1/', '198.18.0.1', 'reserved (special-purpose)'],
      // WHATWG URL parsing turns these spellings into 127.0.0.1 before anything else looks.
      ['http://2130706433/', '127.0.0.1', 'loopback'],
      ['http://0x7f.1/', '127.0.0.1', 'loopback'],
    ];
    for (const [url, address, range] of targets) {
      let err = new Error('not run') as Error & Record<string, unknown>;
      const started = performance.now();
      const sockets = await socketsOpenedDuring(async () => {
        err = await failureOf(handler.handle(jobOf({ url, body: {} }), ctxOf()));
      });
      expect(sockets, url).toBe(0);
      expect(performance.now() - started, url).toBeLessThan(1_000);
      expect(err, url).toBeInstanceOf(BlockedAddressError);
      expect(err, url).toMatchObject({ address, range });
      expect(err.message, url).toContain(address);
    }
  });

  it('refuses a host name that resolves to loopback unless that origin is an internal origin of the type', async () => {
    const srv = await startServer();
    const url = `http://localhost:${srv.port}/hook`;
    // The same server under its address is internal; the name reaches it only through `*`.
    const refused = createHttpHandler(envelopes([srv.origin], { anyPublic: true }));
    const err = await failureOf(refused.handle(jobOf({ url, body: { a: 1 } }), ctxOf()));
    expect(err).toBeInstanceOf(BlockedAddressError);
    expect(err.message).toMatch(/localhost.*resolves to .*127\.0\.0\.1|localhost.*resolves to ::1/);
    expect(srv.connections).toBe(0);

    const allowed = createHttpHandler(envelopes([`http://localhost:${srv.port}`]));
    await expect(allowed.handle(jobOf({ url, body: { a: 1 } }), ctxOf())).resolves.toMatchObject({ status: 204 });
    expect(srv.received).toHaveLength(1);
  });

  it('takes an internal origin as scheme, host and port: another port or scheme on that host is refused', async () => {
    const allowed = await startServer();
    const other = await startServer();
    for (const anyPublic of [false, true]) {
      const handler = createHttpHandler(envelopes([allowed.origin], { anyPublic }));
      await handler.handle(jobOf({ url: allowed.origin, body: 1 }), ctxOf());
      for (const url of [other.origin, `https://127.0.0.1:${allowed.port}/`]) {
        const err = await failureOf(handler.handle(jobOf({ url, body: 1 }), ctxOf()));
        // Without `*` the origin is not the type's at all; with it, only public addresses are.
        expect(err, url).toBeInstanceOf(anyPublic ? BlockedAddressError : DisallowedUrlError);
        expect(classify(err).errorClass).toBe('validation');
      }
    }
    expect(allowed.received).toHaveLength(2);
    expect(other.connections).toBe(0);
  });
});

describe('http handler: redirects', () => {
  it('refuses a 307 to a loopback port its type does not name, without connecting to it', async () => {
    const internal = await startServer();
    const front = await startServer((_q, res) =>
      res.writeHead(307, { location: `http://127.0.0.1:${internal.port}/admin` }).end(),
    );
    for (const anyPublic of [false, true]) {
      const handler = createHttpHandler(envelopes([front.origin], { anyPublic }));
      const err = await failureOf(handler.handle(jobOf({ url: front.origin, body: {} }), ctxOf()));
      expect(err).toBeInstanceOf(anyPublic ? BlockedAddressError : DisallowedUrlError);
      expect(err.message).toContain(`127.0.0.1:${internal.port}`);
      expect(classify(err).errorClass).toBe('validation');
    }
    expect(front.received).toHaveLength(2);
    expect(internal.connections).toBe(0);
  });

  it('follows a fixed target only within its own origin, even to an origin another type names', async () => {
    const billing = await startServer();
    const front = await startServer((req, res) =>
      req.url === '/old'
        ? res.writeHead(308, { location: '/new' }).end()
        : res.writeHead(307, { location: `${billing.origin}/in` }).end(),
    );
    const handlers = createHttpHandlers(
      fixed(`${front.origin}/old`, {
        secret: SECRET,
        types: { billing: { target: billing.origin, internalOrigins: [billing.origin] } },
        signingSecrets: { [billing.origin]: `whsec_${Buffer.from('billing key').toString('base64')}` },
      }),
    );
    const err = await failureOf(handlers[0]!.handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(DisallowedUrlError);
    expect(err.message).toBe(
      `${front.origin} redirected to ${billing.origin}, which job type "http" does not send to ` +
        `(it sends to its target's origin ${front.origin} only)`,
    );
    expect(front.received.map((r) => r.path)).toEqual(['/old', '/new']);
    expect(billing.connections).toBe(0);
  });

  it("follows a 308 to another origin of its type, POSTing the same body signed with that origin's secret", async () => {
    const key = Buffer.from('second origin key');
    const target = await startServer((_q, res) => res.writeHead(202).end());
    const front = await startServer((_q, res) => res.writeHead(308, { location: `${target.origin}/moved` }).end());
    const handler = createHttpHandler(
      envelopes([front.origin, target.origin], {
        signingSecrets: { [front.origin]: SECRET, [target.origin]: `whsec_${key.toString('base64')}` },
      }),
    );
    const ctx = ctxOf();
    const rawText = '{"id":1}';
    const result = await handler.handle(jobOf({ url: `${front.origin}/old`, body: { id: 1 } }), ctx);

    expect(result).toEqual({ status: 202, url: target.origin, redirects: 1 });
    const first = front.received[0]!;
    expect(first.headers['webhook-signature']).toBe(expectedSignature(SECRET_KEY, first.headers, first.body));
    const got = target.received[0]!;
    expect(got.method).toBe('POST');
    expect(got.body.toString()).toBe(rawText);
    expect(got.headers['webhook-signature']).toBe(expectedSignature(key, got.headers, got.body));
    expect(ctx.logs).toEqual([
      {
        message: 'http target redirected',
        fields: { status: 308, from: front.origin, to: target.origin },
      },
    ]);
  });

  it('keeps credentials on a same-origin redirect and drops them, and headers marked secret, on a cross-origin one', async () => {
    const other = await startServer();
    const front = await startServer((req, res) =>
      req.url === '/first'
        ? res.writeHead(307, { location: '/second' }).end()
        : res.writeHead(307, { location: `${other.origin}/third` }).end(),
    );
    const handler = createHttpHandler(envelopes([front.origin, other.origin], { secretHeaders: ['X-Tenant-Token'] }));
    const headers = {
      authorization: 'Bearer abc',
      cookie: 'session=1',
      'X-Api-Key': 'k3y',
      'x-tenant-token': 't0k',
      'proxy-authorization': 'Basic eA==',
      'x-keep': 'yes',
    };
    await handler.handle(jobOf({ url: `${front.origin}/first`, body: {}, headers }), ctxOf());
    const secretNames = ['authorization', 'cookie', 'x-api-key', 'x-tenant-token', 'proxy-authorization'];
    const secretsOf = (r: Received) => secretNames.map((n) => r.headers[n]);
    const all = ['Bearer abc', 'session=1', 'k3y', 't0k', 'Basic eA=='];
    expect(front.received.map((r) => [r.path, secretsOf(r)])).toEqual([
      ['/first', all],
      ['/second', all],
    ]);
    const last = other.received[0]!;
    expect(last.path).toBe('/third');
    expect(secretsOf(last)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(last.headers['x-keep']).toBe('yes');
  });

  it('fails 301, 302 and 303 with their status rather than re-POSTing or dropping the body', async () => {
    for (const status of [301, 302, 303]) {
      const target = await startServer();
      const front = await startServer((_q, res) => res.writeHead(status, { location: target.origin }).end());
      const err = await failureOf(createHttpHandler(fixed(front.origin)).handle(jobOf({}), ctxOf()));
      expect(err).toBeInstanceOf(HttpStatusError);
      expect(err).toMatchObject({ status });
      expect(target.connections).toBe(0);
      // docs/retries.md: statuses other than 2xx, 408, 429 and 5xx are dead-lettered, not retried.
      expect(classify(err).errorClass, String(status)).toBe('client');
    }
  });

  it('stops after 3 redirects', async () => {
    const srv = await startServer((req, res) => {
      const n = Number(req.url?.slice(1) || '0');
      res.writeHead(307, { location: `/${n + 1}` }).end();
    });
    const err = await failureOf(createHttpHandler(fixed(`${srv.origin}/0`)).handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err.message).toContain('more than 3 redirects');
    expect(srv.received.map((r) => r.path)).toEqual(['/0', '/1', '/2', '/3']);
  });

  it('refuses a redirect to a non-http scheme', async () => {
    const srv = await startServer((_q, res) => res.writeHead(308, { location: 'file:///etc/passwd' }).end());
    const err = await failureOf(createHttpHandler(fixed(srv.origin)).handle(jobOf({}), ctxOf()));
    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err.message).toContain('file:');
  });
});
