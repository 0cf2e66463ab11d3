import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { HttpStatusError, NonRetryableError } from '@redrive/sdk';
import type { EgressPolicy, ResolvedAddress } from './egress-policy.js';
import type { HttpRoute } from './http-routes.js';

// One POST of a webhook, hop by hop. node:http rather than fetch: it takes a `lookup` per
// request, so the socket connects to exactly the addresses the egress policy checked (fetch's
// bundled undici takes no per-request lookup without an extra dependency), and its network
// errors carry their `code` directly.

/** The target did not answer within the http handler's timeout. Classified as a timeout, retried. */
export class HttpTimeoutError extends Error {
  override readonly name: string = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`POST ${url} did not complete within ${timeoutMs} ms`);
  }
}

/** The target could not be reached; `code` is the system error's (ECONNREFUSED, ENOTFOUND…). */
export class HttpNetworkError extends Error {
  override readonly name: string = 'HttpNetworkError';
  constructor(
    readonly url: string,
    readonly code: string,
    options: ErrorOptions,
  ) {
    super(`POST ${url} failed: ${(options.cause as Error | undefined)?.message ?? code}`, options);
  }
}

/** Keep-alive connection pools of one set of http handlers; sockets are pinned to checked addresses. */
export interface DeliveryAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

export function createDeliveryAgents(): DeliveryAgents {
  // A dedicated pool: a socket another part of the process opened to the same host:port,
  // without the egress check, must never carry a job.
  return { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
}

export interface Delivery {
  url: URL;
  body: Buffer;
  /** The headers of a send to `url`, built per hop (signatures are per origin and per send). */
  headersFor(url: URL, hop: number): Record<string, string>;
}

export interface DeliveryOptions {
  /** Where the job's type may send: checked for the first URL and every redirect. */
  route: HttpRoute;
  policy: EgressPolicy;
  agents: DeliveryAgents;
  /** The job's signal: when it aborts, its reason is thrown. */
  signal: AbortSignal;
  /** Deadline of the whole delivery, DNS and redirects included. */
  timeoutMs: number;
  maxRedirects: number;
  /** How much of a response body is read; the rest is not, and its connection is closed. */
  maxResponseBytes: number;
  /** How much of a failed response's body goes into the error message. */
  maxErrorExcerpt: number;
  onRedirect?: (info: { status: number; from: string; to: string }) => void;
}

export interface Delivered {
  status: number;
  /** The origin where the delivery ended (after redirects); see displayUrl. */
  url: string;
  redirects: number;
}

/**
 * A URL as errors, logs and results show it: its origin only. The path and query of a webhook
 * URL are often its secret (Slack's and Discord's hooks are a token in the path), and errors
 * travel on into DLQ headers, lifecycle events and the audit trail.
 */
export function displayUrl(url: URL): string {
  return url.origin;
}

const REDIRECT_KEEPS_POST = new Set([307, 308]);

/**
 * POSTs `delivery.body`, following at most `maxRedirects` 307/308 redirects (each new target
 * checked like the first: the type's origins, then its addresses); resolves on 2xx and throws
 * HttpStatusError for any other final status.
 */
export async function deliver(delivery: Delivery, opts: DeliveryOptions): Promise<Delivered> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = AbortSignal.any([opts.signal, timeout]);
  let url = delivery.url;
  let from: URL | undefined;
  for (let hop = 0; ; hop++) {
    // A URL the type does not send to is refused before anything is resolved, sent or signed.
    const reach = opts.route.check(url, from);
    let answer: Answer;
    try {
      const addresses = await opts.policy.resolve(url, { mayBeInternal: opts.route.mayBeInternal(url), reach, signal });
      answer = await send(url, addresses, delivery.headersFor(url, hop), delivery.body, signal, opts);
    } catch (err) {
      if (opts.signal.aborted) throw jobAbortReason(opts.signal);
      if (timeout.aborted) throw new HttpTimeoutError(displayUrl(url), opts.timeoutMs);
      throw asNetworkError(err, url);
    }
    const where = displayUrl(url);
    if (answer.status >= 200 && answer.status <= 299) return { status: answer.status, url: where, redirects: hop };
    const location = firstHeader(answer.headers.location);
    if (REDIRECT_KEEPS_POST.has(answer.status) && location !== undefined) {
      if (hop >= opts.maxRedirects) {
        throw new NonRetryableError(`POST ${where}: more than ${opts.maxRedirects} redirects`);
      }
      const next = redirectTarget(location, url);
      opts.onRedirect?.({ status: answer.status, from: where, to: displayUrl(next) });
      from = url;
      url = next;
      continue;
    }
    // 301, 302 and 303 let a client turn POST into GET; re-POSTing the body there is not what
    // the target asked for, and dropping it loses the job: both are failures.
    const err = new HttpStatusError(answer.status, where, firstHeader(answer.headers['retry-after']));
    if (answer.status >= 300 && answer.status <= 399) {
      err.message += ', a redirect that is not followed (only 307 and 308 keep the POST): send to the final URL';
    }
    const excerpt = excerptOf(answer.body, opts.maxErrorExcerpt);
    if (excerpt) err.message = `${err.message}: ${excerpt}`;
    throw err;
  }
}

function redirectTarget(location: string, base: URL): URL {
  let next: URL;
  try {
    next = new URL(location, base);
  } catch {
    throw new NonRetryableError(`POST ${displayUrl(base)} redirected to an invalid URL`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new NonRetryableError(
      `POST ${displayUrl(base)} redirected to a ${next.protocol} URL; only http(s) is followed`,
    );
  }
  if (next.username || next.password) {
    throw new NonRetryableError(`POST ${displayUrl(base)} redirected to a URL with credentials`);
  }
  next.hash = '';
  return next;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function jobAbortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(`the job was aborted: ${String(reason)}`);
  err.name = 'AbortError';
  return err;
}

function asNetworkError(err: unknown, url: URL): unknown {
  if (err instanceof NonRetryableError || err instanceof HttpStatusError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? new HttpNetworkError(displayUrl(url), code, { cause: err }) : err;
}

function excerptOf(body: Buffer, max: number): string {
  // Control characters and newlines would break the one-line form errors take in logs and headers.
  const text = body
    .toString('utf8')
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** At most maxResponseBytes of the body. */
  body: Buffer;
}

/** A lookup that answers with the already checked addresses, whatever DNS says now. */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
    const usable = addresses.filter((a) => wanted === 0 || a.family === wanted);
    if (usable.length === 0) {
      const err: NodeJS.ErrnoException = new Error(`no IPv${wanted} address among the checked ones`);
      err.code = 'ENOTFOUND';
      callback(err, '', 0);
    } else if (options.all) {
      callback(null, usable);
    } else {
      callback(null, usable[0]!.address, usable[0]!.family);
    }
  };
}

function send(
  url: URL,
  addresses: readonly ResolvedAddress[],
  headers: Record<string, string>,
  body: Buffer,
  signal: AbortSignal,
  opts: DeliveryOptions,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const https = url.protocol === 'https:';
    const req = (https ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(body.byteLength) },
      agent: https ? opts.agents.https : opts.agents.http,
      lookup: pinnedLookup(addresses),
    });
    const onAbort = () => {
      req.destroy();
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    req.on('error', (err) => {
      done();
      reject(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        done();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      };
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        const room = opts.maxResponseBytes - size;
        if (chunk.byteLength > room) {
          chunks.push(chunk.subarray(0, room));
          size += room;
          // The rest is never read: closing the connection is cheaper than draining a body of
          // unknown size, and the socket cannot go back to the pool with unread data on it.
          res.destroy();
          finish();
          return;
        }
        chunks.push(chunk);
        size += chunk.byteLength;
      });
      res.on('end', finish);
      // The status line and headers are the answer; a body cut short does not change it.
      res.on('error', finish);
      res.on('close', finish);
    });
    req.end(body);
  });
}
