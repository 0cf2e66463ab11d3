import { STATUS_CODES } from 'node:http';
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { ServiceError, Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import type { Logger } from 'pino';

// Redrive's one request/reply style: every service that answers requests over NATS is a NATS
// micro service (`nats micro ls/info/stats`), its requests and answers JSON, its refusals micro
// errors: the status as `Nats-Service-Error-Code`, the message as `Nats-Service-Error`, and the
// same body as an HTTP error, `{statusCode, code, error, message}`, whose `code` callers branch on.

/** A refusal's body, over NATS as over HTTP (docs/api.md). */
export interface MicroErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

/**
 * A typed refusal with a stable code: thrown by an endpoint's operation to answer with a micro
 * error, and by `requestMicro` when the service answered with one. `statusCode` is an HTTP
 * status (what the refusal means), sent as the micro error code.
 */
export class MicroError<C extends string = string> extends Error {
  override readonly name = 'MicroError';
  constructor(
    readonly statusCode: number,
    readonly code: C,
    message: string,
  ) {
    super(message);
  }

  toBody(): MicroErrorBody {
    return {
      statusCode: this.statusCode,
      code: this.code,
      error: STATUS_CODES[this.statusCode] ?? 'Error',
      message: this.message,
    };
  }
}

/** No service answered in time (none running, NATS down, overloaded, or not allowed to ask). */
export class MicroUnavailableError extends Error {
  override readonly name = 'MicroUnavailableError';
  constructor(
    readonly subject: string,
    cause: unknown,
  ) {
    super(`nothing answered on ${subject}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** What an error that is no refusal answers: the service failed; the caller may try again. */
const INTERNAL = () => new MicroError(500, 'INTERNAL', 'internal error; the request was not completed');

/** One JSON endpoint: its request (parsed, `{}` when empty) in, its answer (sent as JSON) out. */
export interface MicroEndpoint {
  run: (request: unknown, msg: ServiceMsg) => Promise<unknown>;
  /** Shown by `nats micro info`. */
  metadata?: Record<string, string>;
}

export interface MicroServiceOptions {
  /** The micro service name (`nats micro ls`); replicas share it, and one of them answers each request. */
  name: string;
  version: string;
  description: string;
  metadata?: Record<string, string>;
  /** The subject root: endpoint `<name>` answers on `<root>.<name>`. */
  root: string;
  endpoints: Record<string, MicroEndpoint>;
  /**
   * Turns an operation's own typed error into a MicroError (the one place a service maps its
   * refusals to NATS); what it does not turn into one answers 500 INTERNAL and is logged.
   */
  toMicroError?: (err: unknown) => unknown;
  logger: Logger;
}

export interface MicroServer {
  readonly service: Service;
  /** Stops taking requests, then waits for the answers in progress. */
  stop(): Promise<void>;
}

/** Answers a request with a micro error carrying `err`'s status, message and body. */
export function respondMicroError(msg: ServiceMsg, err: MicroError): boolean {
  const body = err.toBody();
  return msg.respondError(body.statusCode, body.message, JSON.stringify(body));
}

/**
 * Starts a NATS micro service whose endpoints take and answer JSON, in a queue group named after
 * the service. A request that is not JSON is refused with 400 INVALID_JSON before it runs.
 */
export async function startMicroService(nc: NatsConnection, opts: MicroServiceOptions): Promise<MicroServer> {
  const { logger } = opts;
  const decoder = new TextDecoder();
  const inFlight = new Set<Promise<void>>();
  const service = await new Svcm(nc).add({
    name: opts.name,
    version: opts.version,
    description: opts.description,
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
    queue: opts.name,
  });
  const group = service.addGroup(opts.root);

  const answer = async (name: string, endpoint: MicroEndpoint, msg: ServiceMsg): Promise<void> => {
    try {
      let request: unknown = {};
      if (msg.data.length > 0) {
        try {
          request = JSON.parse(decoder.decode(msg.data));
        } catch (parseErr) {
          throw new MicroError(400, 'INVALID_JSON', `the request is not valid JSON: ${(parseErr as Error).message}`);
        }
      }
      msg.respond(JSON.stringify(await endpoint.run(request, msg)));
    } catch (err) {
      const mapped = opts.toMicroError ? opts.toMicroError(err) : err;
      const refusal = mapped instanceof MicroError ? mapped : INTERNAL();
      if (refusal.statusCode >= 500) logger.error({ err, service: opts.name, endpoint: name }, 'NATS request failed');
      respondMicroError(msg, refusal);
    }
  };

  for (const [name, endpoint] of Object.entries(opts.endpoints)) {
    group.addEndpoint(name, {
      ...(endpoint.metadata ? { metadata: endpoint.metadata } : {}),
      handler: (err, msg) => {
        if (err) {
          logger.error({ err, service: opts.name, endpoint: name }, 'NATS endpoint stopped');
          return;
        }
        const p = answer(name, endpoint, msg).finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
    });
  }
  logger.info({ name: opts.name, subjects: `${opts.root}.>` }, 'NATS endpoints ready');
  return {
    service,
    async stop() {
      await service.stop().catch(() => undefined);
      await Promise.allSettled([...inFlight]);
    },
  };
}

/**
 * Calls one endpoint of a micro service with a JSON request and resolves with its JSON answer.
 * A micro error becomes a MicroError with the code its body names (one of `codes` when they are
 * given, else an Error saying what came back); no answer in time is a MicroUnavailableError.
 */
export async function requestMicro<T, C extends string = string>(
  nc: NatsConnection,
  subject: string,
  request: unknown,
  opts: { timeoutMs?: number; headers?: MsgHdrs; codes?: readonly C[] } = {},
): Promise<T> {
  let reply;
  try {
    reply = await nc.request(subject, JSON.stringify(request), {
      timeout: opts.timeoutMs ?? 5_000,
      ...(opts.headers ? { headers: opts.headers } : {}),
    });
  } catch (err) {
    throw new MicroUnavailableError(subject, err);
  }
  const refused = ServiceError.toServiceError(reply);
  if (!refused) return JSON.parse(reply.string()) as T;
  let body: Partial<MicroErrorBody> = {};
  try {
    body = (JSON.parse(reply.string()) as Partial<MicroErrorBody> | null) ?? {};
  } catch {
    // A micro error without Redrive's body: its status and description say all there is.
  }
  const code = typeof body.code === 'string' ? body.code : refused.code >= 500 ? 'INTERNAL' : String(refused.code);
  if (opts.codes && !(opts.codes as readonly string[]).includes(code)) {
    throw new Error(`${subject} answered with an unknown error code ${code} (${refused.code}): ${refused.message}`);
  }
  throw new MicroError(refused.code, code as C, body.message ?? refused.message);
}
