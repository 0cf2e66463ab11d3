import { validateHeaderName, validateHeaderValue } from 'node:http';
import { defineHandler, ValidationError, type HandlerDefinition, type Job } from '@redrive/sdk';
import { injectTraceContext } from '@redrive/telemetry';
import { EgressPolicy } from './egress-policy.js';
import { isPlainObject, type HttpHandlerSettings } from './http-config.js';
import { createDeliveryAgents, deliver, type Delivered, type DeliveryAgents } from './http-delivery.js';
import { DisallowedUrlError, HttpRoute, httpUrlProblem } from './http-routes.js';
import { signingKey, signWebhook } from './webhook-signature.js';

export { BlockedAddressError } from './egress-policy.js';
export {
  httpHandlerEnv,
  httpHandlerSettingsFrom,
  type HttpHandlerEnv,
  type HttpHandlerSettings,
} from './http-config.js';
export { DnsError } from './dns.js';
export { HttpNetworkError, HttpTimeoutError } from './http-delivery.js';
export { ANY_PUBLIC_ORIGIN, DisallowedUrlError, HttpRoute, type HttpTypeSettings } from './http-routes.js';
export { signWebhook, verifyWebhookSignature } from './webhook-signature.js';

// The built-in `http` handler delivers webhook-style jobs: it POSTs the job to a target URL,
// signed the Standard Webhooks way, and turns the answer into success or a typed failure the
// retry engine classifies (HttpStatusError by status, network errors by code). Each job type
// it serves has a route (http-routes.ts): a fixed target, or the origins envelopes may name.

/** The job type of the built-in handler. */
export const HTTP_JOB_TYPE = 'http';
const USER_AGENT = 'redrive/0.1';

const MAX_REDIRECTS = 3;
const MAX_RESPONSE_BYTES = 64 * 1024;
const MAX_ERROR_EXCERPT = 512;

// Headers an envelope may not set: framing is the transport's, and the signature, job and
// trace headers are what receivers rely on to verify, de-duplicate and correlate.
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'traceparent',
  'tracestate',
]);
const ENVELOPE_KEYS = new Set(['url', 'body', 'headers']);

interface Outgoing {
  url: URL;
  body: Buffer;
  headers: Record<string, string>;
}

function envelopeHeaders(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new ValidationError('envelope headers must be an object of strings', 'headers');
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    const path = `headers.${name}`;
    const lower = name.toLowerCase();
    if (typeof v !== 'string') throw new ValidationError(`envelope header ${name} must be a string`, path);
    try {
      validateHeaderName(name);
      validateHeaderValue(name, v);
    } catch (err) {
      throw new ValidationError(`envelope header ${name} is not a valid HTTP header`, path, { cause: err });
    }
    if (RESERVED_HEADERS.has(lower) || lower.startsWith('redrive-')) {
      throw new ValidationError(`envelope header ${name} is set by the http handler and cannot be overridden`, path);
    }
    out[lower] = v;
  }
  return out;
}

/**
 * What to send for `job`: its raw payload to the type's fixed target, or its envelope's body
 * to the envelope's url. Whether the type sends to that url is checked by deliver().
 */
function outgoingOf(job: Job, route: HttpRoute): Outgoing {
  const p = job.payload;
  const isEnvelope = isPlainObject(p) && 'url' in p && 'body' in p && Object.keys(p).every((k) => ENVELOPE_KEYS.has(k));
  if (route.target) {
    if (isEnvelope) {
      throw new DisallowedUrlError(
        `job type "${job.type}" sends to its fixed target only; a payload that is an envelope ` +
          '{ "url", "body" } naming a URL is refused (a type with "origins" takes envelopes)',
        'url',
      );
    }
    return {
      url: new URL(route.target),
      body: Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength),
      headers: {},
    };
  }
  if (!isEnvelope) {
    throw new ValidationError(
      `job type "${job.type}" takes envelopes { "url", "body", "headers"? } and has no fixed target, and the ` +
        'payload is not an envelope (an envelope has url and body and no other keys)',
    );
  }
  const problem = typeof p.url === 'string' ? httpUrlProblem(p.url) : 'is not a string';
  if (problem) throw new ValidationError(`envelope url ${problem}`, 'url');
  const url = new URL(p.url as string);
  url.hash = '';
  return { url, body: Buffer.from(JSON.stringify(p.body)), headers: envelopeHeaders(p.headers) };
}

/** The W3C trace headers to send: the running span's, or else those the job arrived with. */
function traceHeadersOf(job: Job): Record<string, string> {
  const out: Record<string, string> = {};
  injectTraceContext((name, value) => {
    out[name.toLowerCase()] = value;
  });
  if (out.traceparent) return out;
  const fromJob: Record<string, string> = {};
  for (const [name, value] of Object.entries(job.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'traceparent' || lower === 'tracestate') fromJob[lower] = value;
  }
  return fromJob.traceparent ? fromJob : {};
}

interface HandlerRuntime {
  settings: HttpHandlerSettings;
  policy: EgressPolicy;
  agents: DeliveryAgents;
  keysByOrigin: ReadonlyMap<string, Buffer>;
}

function runtimeOf(settings: HttpHandlerSettings): HandlerRuntime {
  return {
    settings,
    policy: new EgressPolicy({
      ...(settings.dnsTimeoutMs !== undefined ? { timeoutMs: settings.dnsTimeoutMs } : {}),
      ...(settings.dnsServers ? { servers: settings.dnsServers } : {}),
    }),
    agents: createDeliveryAgents(),
    keysByOrigin: new Map(
      Object.entries(settings.signingSecrets ?? {}).map(([origin, s]) => [new URL(origin).origin, signingKey(s)]),
    ),
  };
}

/**
 * The key that signs a send to `url` for `route`: the secret of that exact origin, and only
 * when the type names the origin. A URL reached through `*` is never signed, even on an origin
 * that has a secret for another type: whoever submits a job could otherwise have the receiver
 * believe it came from that other type.
 */
export function signingKeyFor(
  route: HttpRoute,
  url: URL,
  keysByOrigin: ReadonlyMap<string, Buffer>,
): Buffer | undefined {
  return route.reach(url) === 'named' ? keysByOrigin.get(url.origin) : undefined;
}

function handlerFor(route: HttpRoute, rt: HandlerRuntime): HandlerDefinition {
  const { settings } = rt;
  return defineHandler({
    type: route.type,
    // The worker's deadline comes a little after the delivery's own, so a slow target fails
    // as a timeout of this delivery (retried) with its URL, not as a handler that hung.
    timeoutMs: settings.timeoutMs + 1_000,
    // Rate limits configured as "host:<hostname>" apply per target host, across job types.
    rateLimitKeys: (job) => {
      try {
        return [`host:${outgoingOf(job, route).url.hostname}`];
      } catch {
        return [];
      }
    },
    async handle(job, ctx): Promise<Delivered> {
      const out = outgoingOf(job, route);
      const trace = traceHeadersOf(job);
      const firstOrigin = out.url.origin;
      return deliver(
        {
          url: out.url,
          body: out.body,
          headersFor: (url) => {
            const sameOrigin = url.origin === firstOrigin;
            const headers: Record<string, string> = {
              'content-type': 'application/json',
              'user-agent': USER_AGENT,
            };
            // Credentials meant for the first origin are not handed to another one a redirect names.
            for (const [name, value] of Object.entries(out.headers)) {
              if (sameOrigin || !route.secretHeaders.has(name)) headers[name] = value;
            }
            Object.assign(headers, trace, { 'redrive-job-id': job.id, 'redrive-attempt': String(job.attempt) });
            // Signed per send: the timestamp is when this request leaves, and the key is the
            // one of the origin it goes to, so a redirect elsewhere never carries another's signature.
            const key = signingKeyFor(route, url, rt.keysByOrigin);
            if (key) Object.assign(headers, signWebhook(key, job.id, Date.now() / 1000, out.body));
            return headers;
          },
        },
        {
          route,
          policy: rt.policy,
          agents: rt.agents,
          signal: ctx.signal,
          timeoutMs: settings.timeoutMs,
          maxRedirects: settings.maxRedirects ?? MAX_REDIRECTS,
          maxResponseBytes: settings.maxResponseBytes ?? MAX_RESPONSE_BYTES,
          maxErrorExcerpt: MAX_ERROR_EXCERPT,
          onRedirect: (r) => ctx.log('http target redirected', r),
        },
      );
    },
  });
}

/** The handler of one type of `settings.types` (default `http`); throws TypeError when it is not configured. */
export function createHttpHandler(settings: HttpHandlerSettings, type: string = HTTP_JOB_TYPE): HandlerDefinition {
  const rule = settings.types[type];
  if (!rule) throw new TypeError(`http handler settings have no type "${type}"`);
  return handlerFor(new HttpRoute(type, rule), runtimeOf(settings));
}

/** One handler per type in `settings.types`; they share one connection pool. */
export function createHttpHandlers(settings: HttpHandlerSettings): HandlerDefinition[] {
  const rt = runtimeOf(settings);
  return Object.entries(settings.types).map(([type, rule]) => handlerFor(new HttpRoute(type, rule), rt));
}
