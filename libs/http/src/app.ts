import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { ErrorObject } from 'ajv';
import { STATUS_CODES } from 'node:http';
import { guardRoutes, NO_CALLERS, type RouteAuth } from './auth.js';
import { HttpError, type ErrorBody } from './errors.js';
import { createValidators } from './validation.js';

function body(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** Maps any error a request can meet to the uniform body and the right 4xx/5xx status. */
export function toErrorBody(err: FastifyError | HttpError | Error): ErrorBody {
  if (err instanceof HttpError) return body(err.statusCode, err.code, err.message);
  const fe = err as FastifyError;
  if (fe.validation) return body(400, 'VALIDATION_ERROR', fe.message);
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return body(415, 'UNSUPPORTED_MEDIA_TYPE', `${fe.message}; send the body as application/json`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return body(413, 'BODY_TOO_LARGE', fe.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return body(400, 'INVALID_JSON', 'the body is empty but content-type is application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return body(400, 'INVALID_JSON', `the body is not valid JSON: ${fe.message}`);
    default:
      break;
  }
  if (err instanceof SyntaxError || fe.statusCode === 400) {
    return body(400, 'INVALID_JSON', `the body is not valid JSON: ${err.message}`);
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return body(fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message);
  }
  return body(500, 'INTERNAL', 'internal error; the request was not completed');
}

export interface HttpAppOptions {
  logger: Logger;
  bodyLimit?: number;
  /** Log each request at info (intake) or debug (health-only servers). */
  requestLogLevel?: 'info' | 'debug';
  /** Who may call the app's routes; without it only routes declared public answer. */
  auth?: RouteAuth;
}

/** One route of an app, as fastify registered it (HEAD routes it adds for GET included). */
export interface RouteInfo {
  method: string;
  url: string;
  /** The route's `config.access`; undefined when it declares none (it then answers nobody). */
  access: string | undefined;
}

const routeTables = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Every route registered on an app made by createHttpApp, from fastify's own onRoute hook. */
export function routeTable(app: FastifyInstance): readonly RouteInfo[] {
  const table = routeTables.get(app);
  if (!table) throw new Error('routeTable: the app was not made by createHttpApp');
  return table;
}

/**
 * A fastify instance with Redrive's HTTP conventions: JSON only, strict schema validation of
 * bodies (no coercion, unknown fields refused; query strings and path parameters are coerced
 * from text), and one error body shape for every failure.
 */
export function createHttpApp(opts: HttpAppOptions): FastifyInstance {
  const validators = createValidators();
  const app = Fastify({
    loggerInstance: opts.logger as unknown as FastifyServerOptions['loggerInstance'],
    // One line per request comes from the onResponse hook below, not fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit ?? 1_048_576,
    return503OnClosing: true,
    schemaErrorFormatter: (errors, dataVar) => new Error(validators.describe(errors as ErrorObject[], dataVar)),
  }) as unknown as FastifyInstance;
  // Redrive's validation policy (validation.ts): strict bodies, query strings and path parameters coerced from text.
  app.setValidatorCompiler(({ schema, httpPart }) =>
    validators.compile(schema, httpPart === 'querystring' || httpPart === 'params'),
  );
  // Only JSON is accepted: without this fastify would also parse text/plain bodies.
  app.removeContentTypeParser('text/plain');
  const table: RouteInfo[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) table.push({ method, url: route.url, access: route.config?.access });
  });
  // The route table at start, so a test can enumerate a running service's routes.
  app.addHook('onReady', async () => app.log.debug({ routes: table }, 'http routes'));
  guardRoutes(app, opts.auth ?? NO_CALLERS);
  const level = opts.requestLogLevel ?? 'debug';
  app.addHook('onResponse', async (req, reply) => {
    req.log[reply.statusCode >= 500 ? 'error' : level](
      { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    const out = toErrorBody(err);
    if (out.code === 'UNSUPPORTED_MEDIA_TYPE') {
      out.message = `content-type ${JSON.stringify(req.headers['content-type'] ?? '')} is not supported; send the body as application/json`;
    }
    if (out.statusCode >= 500) req.log.error({ err }, 'request failed');
    if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
    return reply.code(out.statusCode).send(out);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(body(404, 'NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );
  return app;
}
