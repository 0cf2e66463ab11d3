import type { NatsConnection } from '@nats-io/nats-core';
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import { createValidators, toErrorBody } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import { DLQ_MANAGER_READ_ENDPOINTS, DLQ_MANAGER_SERVICE_NAME, type Topology } from '@redrive/messaging';
import { OperationError } from '../dead-letters/errors.js';
import type { Actor, Admin, RedriveRequest } from './admin.js';
import { httpErrorOf } from './app.js';
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

/**
 * The admin operations as a NATS micro service, so `nats micro ls/info/stats` list it and
 * `nats req <root>.<op> '<json>'` runs an operation. Access is the NATS account's business
 * (permissions.ts): the operator user may call every endpoint, the viewer user only those in
 * DLQ_MANAGER_READ_ENDPOINTS; an endpoint missing from that list answers operators only.
 */
export async function startMicroService(deps: {
  nc: NatsConnection;
  admin: Admin;
  topology: Topology;
  version: string;
  logger: Logger;
}): Promise<Service> {
  const { admin, logger } = deps;
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
  };

  const service = await new Svcm(deps.nc).add({
    name: SERVICE_NAME,
    version: deps.version,
    description: 'Redrive dead-letter queue: list, inspect, resolve, redrive, delete, statistics, cleanup, timelines',
    metadata: { prefix: deps.topology.options.prefix, http: '/v1/admin' },
    queue: SERVICE_NAME,
  });
  const group = service.addGroup(endpointRoot(deps.topology));
  const encoder = new TextEncoder();

  for (const [name, op] of Object.entries(ops)) {
    const validate = validators.compile(op.schema, op.coerce);
    const fail = (msg: ServiceMsg, err: unknown) => {
      // The same body and status as over HTTP (docs/api.md), the status as the micro error code;
      // NATS has no Retry-After.
      const body = toErrorBody(httpErrorOf(err) as Error);
      if (body.statusCode >= 500) logger.error({ err, endpoint: name }, 'NATS request failed');
      msg.respondError(body.statusCode, body.message, encoder.encode(JSON.stringify(body)));
    };
    group.addEndpoint(name, {
      metadata: { change: String(!DLQ_MANAGER_READ_ENDPOINTS.includes(name)), schema: JSON.stringify(op.schema) },
      handler: (err, msg) => {
        if (err) {
          logger.error({ err, endpoint: name }, 'NATS endpoint stopped');
          return;
        }
        void (async () => {
          let req: unknown = {};
          if (msg.data.length > 0) {
            try {
              req = JSON.parse(new TextDecoder().decode(msg.data));
            } catch (parseErr) {
              throw new OperationError('INVALID_JSON', `the request is not valid JSON: ${(parseErr as Error).message}`);
            }
          }
          if (!validate(req)) {
            throw new OperationError('VALIDATION_ERROR', validators.describe(validate.errors, 'request'));
          }
          const who = msg.headers?.get(ACTOR_HEADER)?.trim();
          const result = await op.run(req as never, { name: `nats:${who || 'anonymous'}` });
          msg.respond(encoder.encode(JSON.stringify(result)));
        })().catch((e: unknown) => fail(msg, e));
      },
    });
  }
  logger.info({ name: SERVICE_NAME, subjects: `${endpointRoot(deps.topology)}.>` }, 'NATS endpoints ready');
  return service;
}
