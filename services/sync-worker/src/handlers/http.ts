import { validateHeaderName, validateHeaderValue } from 'node:http';
import { isIP } from 'node:net';
import { ConfigError, duration, list, MAX_TIMER_MS, oneOf, optStr, type Frozen } from '@redrive/config';
import { isJobType } from '@redrive/messaging';
import { defineHandler, ValidationError, type HandlerDefinition, type Job } from '@redrive/sdk';
import { injectTraceContext } from '@redrive/telemetry';
import { z } from 'zod';
import { EgressPolicy, forbiddenRange, normalizeAllowedHost } from './egress-policy.js';
import { createDeliveryAgents, deliver, type Delivered, type DeliveryAgents } from './http-delivery.js';
import { signingKey, signWebhook } from './webhook-signature.js';

export { BlockedAddressError } from './egress-policy.js';
export { HttpNetworkError, HttpTimeoutError } from './http-delivery.js';
export { signWebhook, verifyWebhookSignature } from './webhook-signature.js';

// The built-in `http` handler delivers webhook-style jobs: it POSTs the job to a target URL,
// signed the Standard Webhooks way, and turns the answer into success or a typed failure the
// retry engine classifies (HttpStatusError by status, network errors by code).

/** The job type of the built-in handler. */
export const HTTP_JOB_TYPE = 'http';
const USER_AGENT = 'redrive/0.1';

/** Options of the built-in http handlers (see httpHandlerEnv for what each one means). */
export interface HttpHandlerSettings {
  /** Where `http` jobs whose payload names no url go. */
  readonly targetUrl?: string;
  /** More job types served by the same handler, each with its default target. */
  readonly targets?: Readonly<Record<string, string>>;
  /** Deadline of one delivery, DNS and redirects included. */
  readonly timeoutMs: number;
  /** Signs requests to origins not in `signingSecrets`; unsigned without it. */
  readonly signingSecret?: string;
  /** Origin (`https://api.example.com`) → secret, `whsec_<base64>` or raw. */
  readonly signingSecrets?: Readonly<Record<string, string>>;
  /** Hosts or host:port pairs that may resolve to loopback, private or link-local addresses. */
  readonly allowHosts?: readonly string[];
  /** 307/308 redirects followed per delivery (default 3). */
  readonly maxRedirects?: number;
  /** How much of a response body is read at most (default 64 KiB). */
  readonly maxResponseBytes?: number;
}

// ---------------------------------------------------------------------------------------------
// Configuration

function httpUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'is not an http(s) URL';
  if (url.username || url.password) return 'has credentials in it; send them as headers';
  return undefined;
}

function originProblem(value: string): string | undefined {
  const problem = httpUrlProblem(value);
  if (problem) return problem;
  const url = new URL(value);
  return url.pathname === '/' && !url.search && !url.hash ? undefined : 'is not an origin (scheme://host[:port])';
}

function secretProblem(value: string): string | undefined {
  try {
    signingKey(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** An optional http(s) URL without credentials. */
function targetUrl() {
  return optStr().transform((v, ctx) => {
    const problem = v === undefined ? undefined : httpUrlProblem(v);
    if (problem) {
      // The URL itself is not repeated: its path may be the secret of a webhook.
      ctx.addIssue({ code: 'custom', message: `expected an http(s) URL; the value ${problem}` });
      return z.NEVER;
    }
    return v;
  });
}

/** An optional signing secret; the value never appears in a problem. */
function secret() {
  return optStr().transform((v, ctx) => {
    const problem = v === undefined ? undefined : secretProblem(v);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `expected whsec_<base64> or a raw secret: ${problem}` });
      return z.NEVER;
    }
    return v;
  });
}

/**
 * A JSON object of strings. `check` names what is wrong with one entry; `mapKey` normalizes keys.
 * Problems name keys only, never values, since values may be secrets.
 */
function jsonRecord(
  describe: string,
  check: (key: string, value: string) => string | undefined,
  mapKey: (key: string) => string = (k) => k,
) {
  return optStr().transform((v, ctx) => {
    const out: Record<string, string> = {};
    if (v === undefined) return out;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      parsed = undefined;
    }
    if (!isPlainObject(parsed)) {
      ctx.addIssue({ code: 'custom', message: `expected a JSON object ${describe}` });
      return z.NEVER;
    }
    const problems: string[] = [];
    for (const [key, value] of Object.entries(parsed)) {
      const problem = typeof value === 'string' ? check(key, value) : 'is not a string';
      if (problem) problems.push(`"${key}": ${problem}`);
      else out[mapKey(key)] = value as string;
    }
    if (problems.length > 0) {
      ctx.addIssue({ code: 'custom', message: `expected a JSON object ${describe}; ${problems.join('; ')}` });
      return z.NEVER;
    }
    return out;
  });
}

/** Environment variables of the built-in http handler; spread into the worker's schema. */
export const httpHandlerEnv = {
  /** auto: on when HTTP_TARGET_URL or HTTP_TARGETS names a target; on: also for envelope-only use. */
  HTTP_HANDLER: oneOf(['auto', 'on', 'off'], 'auto'),
  /** Where `http` jobs whose payload is not an envelope `{ url, body, headers? }` go. */
  HTTP_TARGET_URL: targetUrl(),
  /** More job types served by the http handler: JSON `{ "<type>": "<default target URL>" }`. */
  HTTP_TARGETS: jsonRecord(
    'mapping job types to http(s) URLs, e.g. {"billing-webhook":"https://billing.example.com/hooks"}',
    (type, url) => {
      if (!isJobType(type)) return 'is not a job type ([a-z0-9][a-z0-9_-]*)';
      const problem = httpUrlProblem(url);
      return problem && `the URL ${problem}`;
    },
  ),
  /** Deadline of one delivery: DNS, connecting, redirects and reading the answer. */
  HTTP_TIMEOUT: duration('10s', { min: 10, max: MAX_TIMER_MS }),
  /** Default Standard Webhooks signing secret, whsec_<base64> or raw; unsigned without it. */
  HTTP_SIGNING_SECRET: secret(),
  /** Per-origin secrets: JSON `{ "https://api.example.com": "whsec_…" }`; these win over the default. */
  HTTP_SIGNING_SECRETS: jsonRecord(
    'mapping origins (https://host[:port]) to secrets',
    (origin, value) => originProblem(origin) ?? secretProblem(value),
    (origin) => new URL(origin).origin,
  ),
  /** Hosts (or host:port) that may resolve to loopback, private or link-local addresses. */
  HTTP_ALLOW_HOSTS: list([]).transform((items, ctx) => {
    const bad = items.filter((h) => normalizeAllowedHost(h) === undefined);
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected comma-separated host or host:port entries; bad: ${bad.join(', ')}`,
      });
      return z.NEVER;
    }
    return items;
  }),
};

export type HttpHandlerEnv = Frozen<{ [K in keyof typeof httpHandlerEnv]: z.output<(typeof httpHandlerEnv)[K]> }>;

/**
 * The http handler's settings described by parsed HTTP_* variables, or undefined when the
 * handler is off. Throws ConfigError for a target the egress policy would refuse every time.
 */
export function httpHandlerSettingsFrom(env: Readonly<HttpHandlerEnv>): HttpHandlerSettings | undefined {
  const { http: httpTarget, ...extra } = env.HTTP_TARGETS;
  const problems: { variable: string; problem: string }[] = [];
  if (httpTarget !== undefined && env.HTTP_TARGET_URL !== undefined && httpTarget !== env.HTTP_TARGET_URL) {
    problems.push({
      variable: 'HTTP_TARGETS',
      problem: 'names a target for "http" that differs from HTTP_TARGET_URL; set one of them',
    });
  }
  const targetUrl = env.HTTP_TARGET_URL ?? httpTarget;
  const anyTarget = targetUrl !== undefined || Object.keys(extra).length > 0;
  if (env.HTTP_HANDLER === 'off' || (env.HTTP_HANDLER === 'auto' && !anyTarget)) return undefined;

  // A target written as a forbidden IP would fail every job at send time: say so at start-up.
  const policy = new EgressPolicy(env.HTTP_ALLOW_HOSTS);
  const configured: [string, string][] = [
    ...(env.HTTP_TARGET_URL ? [['HTTP_TARGET_URL', env.HTTP_TARGET_URL] as [string, string]] : []),
    ...Object.values(env.HTTP_TARGETS).map((u): [string, string] => ['HTTP_TARGETS', u]),
  ];
  for (const [variable, value] of configured) {
    const url = new URL(value);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const range = isIP(host) ? forbiddenRange(host) : undefined;
    if (range && !policy.allows(url)) {
      problems.push({
        variable,
        problem: `${url.host} is a ${range} address, which the http handler refuses unless HTTP_ALLOW_HOSTS lists it`,
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    targetUrl,
    targets: extra,
    timeoutMs: env.HTTP_TIMEOUT,
    signingSecret: env.HTTP_SIGNING_SECRET,
    signingSecrets: env.HTTP_SIGNING_SECRETS,
    allowHosts: env.HTTP_ALLOW_HOSTS,
  };
}

// ---------------------------------------------------------------------------------------------
// The handler

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
// Credentials meant for the envelope's origin are not handed to another origin a redirect names.
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);
const ENVELOPE_KEYS = new Set(['url', 'body', 'headers']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

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

/** What to send for `job`: its envelope's url, body and headers, or its raw payload to the default target. */
function outgoingOf(job: Job, defaultTarget: string | undefined): Outgoing {
  const p = job.payload;
  const isEnvelope = isPlainObject(p) && 'url' in p && 'body' in p && Object.keys(p).every((k) => ENVELOPE_KEYS.has(k));
  if (isEnvelope) {
    const problem = typeof p.url === 'string' ? httpUrlProblem(p.url) : 'is not a string';
    if (problem) throw new ValidationError(`envelope url ${problem}`, 'url');
    const url = new URL(p.url as string);
    url.hash = '';
    return { url, body: Buffer.from(JSON.stringify(p.body)), headers: envelopeHeaders(p.headers) };
  }
  if (!defaultTarget) {
    throw new ValidationError(
      `job type "${job.type}" has no default target (HTTP_TARGET_URL or HTTP_TARGETS) and the payload is not an ` +
        'envelope { "url", "body", "headers"? } naming one (an envelope has url and body and no other keys)',
    );
  }
  return {
    url: new URL(defaultTarget),
    body: Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength),
    headers: {},
  };
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
  defaultKey: Buffer | undefined;
  keysByOrigin: ReadonlyMap<string, Buffer>;
}

function runtimeOf(settings: HttpHandlerSettings): HandlerRuntime {
  return {
    settings,
    policy: new EgressPolicy(settings.allowHosts),
    agents: createDeliveryAgents(),
    defaultKey: settings.signingSecret === undefined ? undefined : signingKey(settings.signingSecret),
    keysByOrigin: new Map(
      Object.entries(settings.signingSecrets ?? {}).map(([origin, s]) => [new URL(origin).origin, signingKey(s)]),
    ),
  };
}

function handlerFor(type: string, defaultTarget: string | undefined, rt: HandlerRuntime): HandlerDefinition {
  const { settings } = rt;
  return defineHandler({
    type,
    // The worker's deadline comes a little after the delivery's own, so a slow target fails
    // as a timeout of this delivery (retried) with its URL, not as a handler that hung.
    timeoutMs: settings.timeoutMs + 1_000,
    // Rate limits configured as "host:<hostname>" apply per target host, across job types.
    rateLimitKeys: (job) => {
      try {
        return [`host:${outgoingOf(job, defaultTarget).url.hostname}`];
      } catch {
        return [];
      }
    },
    async handle(job, ctx): Promise<Delivered> {
      const out = outgoingOf(job, defaultTarget);
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
            for (const [name, value] of Object.entries(out.headers)) {
              if (sameOrigin || !CREDENTIAL_HEADERS.has(name)) headers[name] = value;
            }
            Object.assign(headers, trace, { 'redrive-job-id': job.id, 'redrive-attempt': String(job.attempt) });
            // Signed per send: the timestamp is when this request leaves, and the key is the
            // one of the origin it goes to, so a redirect elsewhere never carries another's signature.
            const key = rt.keysByOrigin.get(url.origin) ?? rt.defaultKey;
            if (key) Object.assign(headers, signWebhook(key, job.id, Date.now() / 1000, out.body));
            return headers;
          },
        },
        {
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

/** The built-in `http` handler: POSTs each job to its envelope's url or the default target, signed. */
export function createHttpHandler(settings: HttpHandlerSettings): HandlerDefinition {
  return handlerFor(HTTP_JOB_TYPE, settings.targetUrl, runtimeOf(settings));
}

/**
 * The `http` handler plus one handler per extra type in `settings.targets`, each with that
 * type's default target; they share one connection pool and egress policy.
 */
export function createHttpHandlers(settings: HttpHandlerSettings): HandlerDefinition[] {
  const rt = runtimeOf(settings);
  return [
    handlerFor(HTTP_JOB_TYPE, settings.targetUrl, rt),
    ...Object.entries(settings.targets ?? {})
      .filter(([type]) => type !== HTTP_JOB_TYPE)
      .map(([type, url]) => handlerFor(type, url, rt)),
  ];
}
