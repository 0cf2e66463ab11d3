import type { NatsConnection } from '@nats-io/nats-core';
import { createValidators, type HttpError } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import {
  DLQ_MANAGER_READ_ENDPOINTS,
  DLQ_MANAGER_SERVICE_NAME,
  MicroError,
  startMicroService as startMicro,
  type MicroEndpoint,
  type MicroServer,
  type Topology,
} from '@redrive/messaging';
import { OperationError } from '../dead-letters/errors.js';
import type { Actor, Admin, RedriveRequest } from './admin.js';
import { httpErrorOf } from './app.js';
import type { JobLookup } from './jobs.js';
import { jobSearchQuery, pauseBody, queueStatsQuery } from './queue-schemas.js';
import type { PauseRequest, Queues } from '../queues/queues.js';
import {
  bulkRedriveBody,
  cleanupBody,
  idParams,
  jobIdParams,
  operationIdParams,
  listQuery,
  redriveBody,
  resolveBody,
  statsQuery,
} from './schemas.js';

/** The header a NATS caller may set to say who it acts for; the audit trail records it as `nats:<name>`. */
export const ACTOR_HEADER = 'Redrive-Actor';

export const SERVICE_NAME = DLQ_MANAGER_SERVICE_NAME;

/** The subject root of the NATS endpoints, `[<prefix>.]dlq-manager` (Topology.dlqManagerApiRoot). */
export function endpointRoot(topology: Topology): string {
  return topology.dlqManagerApiRoot;
}

const withId = (body: { properties: object }) =>
  ({
    type: 'object',
    required: ['id'],
    additionalProperties: false,
    properties: { ...idParams.properties, ...body.properties },
  }) as const;

type Op = { schema: object; coerce: boolean; run: (req: never, actor: Actor) => Promise<unknown> };

/** An operation's refusal as a micro error: the status, code and message it has over HTTP (app.ts). */
function toMicroError(err: unknown): unknown {
  if (!(err instanceof OperationError)) return err;
  const http = httpErrorOf(err) as HttpError;
  return new MicroError(http.statusCode, http.code, http.message);
}

/**
 * The admin operations as a NATS micro service, so `nats micro ls/info/stats` list it and
 * `nats req <root>.<op> '<json>'` runs an operation. Access is the NATS account's business
 * (permissions.ts): the operator user may call every endpoint, the viewer user only those in
 * DLQ_MANAGER_READ_ENDPOINTS; an endpoint missing from that list answers operators only.
 */
export async function startMicroService(deps: {
  nc: NatsConnection;
  admin: Admin;
  queues: Queues;
  lookup: JobLookup;
  topology: Topology;
  version: string;
  logger: Logger;
}): Promise<MicroServer> {
  const { admin, queues, lookup } = deps;
  const validators = createValidators();
  const ops: Record<string, Op> = {
    list: { schema: listQuery, coerce: true, run: (q: never) => admin.list(q) },
    get: { schema: idParams, coerce: true, run: (q: { id: number }) => admin.get(q.id) },
    resolve: {
      schema: withId(resolveBody),
      coerce: false,
      run: (q: { id: number; note?: string }, a) => admin.resolve(q.id, q, a),
    },
    redrive: {
      schema: withId(redriveBody),
      coerce: false,
      run: (q: { id: number } & RedriveRequest, a) => admin.redrive(q.id, q, a),
    },
    'bulk-redrive': {
      schema: bulkRedriveBody,
      coerce: false,
      run: (q: never, a) => admin.bulkRedrive(q, a),
    },
    operation: { schema: operationIdParams, coerce: false, run: (q: { id: string }) => admin.operation(q.id) },
    'cancel-operation': {
      schema: operationIdParams,
      coerce: false,
      run: (q: { id: string }, a) => admin.cancelOperation(q.id, a),
    },
    delete: { schema: idParams, coerce: false, run: (q: { id: number }, a) => admin.remove(q.id, a) },
    stats: { schema: statsQuery, coerce: true, run: (q: never) => admin.stats(q) },
    cleanup: { schema: cleanupBody, coerce: false, run: (q: never, a) => admin.cleanup(q, a) },
    timeline: { schema: jobIdParams, coerce: false, run: (q: { id: string }) => admin.timeline(q.id) },
    queues: { schema: queueStatsQuery, coerce: false, run: (q: never) => queues.stats(q) },
    pause: { schema: pauseBody, coerce: false, run: (q: PauseRequest, a) => queues.pause(q, a) },
    resume: { schema: pauseBody, coerce: false, run: (q: PauseRequest, a) => queues.resume(q, a) },
    jobs: { schema: jobSearchQuery, coerce: false, run: (q: never) => lookup.search(q) },
    job: { schema: jobIdParams, coerce: false, run: (q: { id: string }) => lookup.detail(q.id) },
  };

  const endpoints: Record<string, MicroEndpoint> = {};
  for (const [name, op] of Object.entries(ops)) {
    const validate = validators.compile(op.schema, op.coerce);
    endpoints[name] = {
      metadata: { change: String(!DLQ_MANAGER_READ_ENDPOINTS.includes(name)), schema: JSON.stringify(op.schema) },
      run: async (req, msg) => {
        if (!validate(req)) {
          throw new OperationError('VALIDATION_ERROR', validators.describe(validate.errors, 'request'));
        }
        const who = msg.headers?.get(ACTOR_HEADER)?.trim();
        return op.run(req as never, { name: `nats:${who || 'anonymous'}` });
      },
    };
  }
  // The same body and status as over HTTP (docs/api.md), the status as the micro error code;
  // NATS has no Retry-After.
  return startMicro(deps.nc, {
    name: SERVICE_NAME,
    version: deps.version,
    description:
      'Redrive dead-letter queue: list, inspect, resolve, redrive, delete, statistics, cleanup, timelines; queue stats, pause and resume; job lookup',
    metadata: { prefix: deps.topology.options.prefix, http: '/v1/admin' },
    root: endpointRoot(deps.topology),
    endpoints,
    toMicroError,
    logger: deps.logger,
  });
}
