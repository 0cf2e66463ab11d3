import { readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  REPO_ROOT,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// Every route of every service that serves HTTP, as fastify registered it in the running
// process (the "http routes" line createHttpApp logs from its onRoute hook), called over raw
// HTTP without credentials, with a wrong one and with one that lacks the route's permission,
// at its own path and at spellings of it a proxy or a string check might read differently.
// None may ever answer 2xx, 5xx or with route data to a caller the route does not admit.

interface Route {
  method: string;
  url: string;
  access?: string;
}

interface Answer {
  status: number;
  body: string;
}

const prefix = uniquePrefix('httpauth');
// Stored where only an admitted caller can read it: a dead letter's payload, a schedule's payload.
const MARKER = `secret-marker-${prefix}`;
const OPERATOR = 'operator-token-httpauth-0001';
const VIEWER = 'viewer-token-httpauth-00002';
const KEYS = {
  submit: 'submit-key-httpauth-00001',
  'schedules:read': 'read-key-httpauth-000002',
  'schedules:cancel': 'cancel-key-httpauth-00003',
} as const;
const INTAKE_KEYS = JSON.stringify(
  Object.entries(KEYS).map(([scope, key]) => ({ name: scope.replace(':', '-'), key, scopes: [scope] })),
);
const WRONG = { authorization: 'Bearer not-a-known-credential-000' };
/** A session cookie dlq-manager never signed (sign-in: POST /v1/session). */
const FORGED_SESSION = {
  cookie: `redrive_session=${Buffer.from(JSON.stringify({ name: 'ops', exp: 4_102_444_800, sid: 'x' })).toString('base64url')}.forged`,
};
/**
 * The routes anyone may call; a new public route has to be added here on purpose. Besides the
 * probes: dlq-manager's sign-in (POST /v1/session), whose body's token is the credential.
 */
const PUBLIC_PROBES = ['/healthz', '/readyz', '/metrics', '/v1/session'];

// A connection per request: a reused keep-alive socket the server has just closed would
// look like a failure of whichever request happened to be sent on it.
const agent = new Agent({ keepAlive: false, maxSockets: 16 });
let nc: NatsConnection;
let db: TestDatabase;
let sql: pg.Pool;
const procs = new Map<string, ServiceProcess>();
const ports = new Map<string, number>();
const routes = new Map<string, Route[]>();
const params: Record<string, Record<string, string>> = {};

/** Sends `path` exactly as written: fetch and inject would normalise it first. */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body = method === 'POST' || method === 'DELETE' ? '{}' : undefined,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        // Node sends a DELETE body unframed unless its length is given.
        headers: {
          ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', (err) => reject(new Error(`${method} ${path}: ${err.message}`)));
    req.end(body);
  });
}

/** A route's URL with its parameters filled in; "::" is fastify's escape for a literal ":". */
function pathOf(service: string, url: string): string {
  const filled = url.split('::').map((part) =>
    part.replace(/:([A-Za-z_]\w*)/g, (_m, name: string) => {
      const value = params[service]?.[name];
      if (value === undefined) throw new Error(`${service}: give the test a value for :${name} (route ${url})`);
      return value;
    }),
  );
  if (filled.some((p) => p.includes('*'))) throw new Error(`${service}: wildcard route ${url} needs a value`);
  return filled.join(':');
}

const hex = (c: string, upper = false) => {
  const h = `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return upper ? h.toUpperCase() : h;
};

/** Spellings of `path` that must either reach the same route (and meet its rule) or no route. */
function variants(path: string): { label: string; path: string }[] {
  const segs = path.split('/').slice(1);
  const toPath = (s: string[]) => `/${s.join('/')}`;
  const out: { label: string; path: string }[] = [];
  const add = (label: string, p: string) => {
    if (p !== path && !out.some((v) => v.path === p)) out.push({ label, path: p });
  };
  segs.forEach((seg, i) => {
    const at = seg.search(/[A-Za-z]/);
    if (at === -1) return;
    const enc = (upper: boolean) =>
      segs.map((s, j) => (j === i ? s.slice(0, at) + hex(s[at]!, upper) + s.slice(at + 1) : s));
    add(`%-encoded letter in segment ${i + 1}`, toPath(enc(false)));
    add(`%-encoded letter in segment ${i + 1} (upper-case hex)`, toPath(enc(true)));
    add(`segment ${i + 1} upper case`, toPath(segs.map((s, j) => (j === i ? s.toUpperCase() : s))));
    add(`;x after segment ${i + 1}`, toPath(segs.map((s, j) => (j === i ? `${s};x` : s))));
  });
  add('every character %-encoded', `/${segs.map((s) => [...s].map((c) => hex(c, true)).join('')).join('/')}`);
  segs.slice(1).forEach((_s, k) => {
    const i = k + 1;
    add(`%2f for slash ${i + 1}`, `/${segs.slice(0, i).join('/')}%2f${segs.slice(i).join('/')}`);
    add(`%2F for slash ${i + 1}`, `/${segs.slice(0, i).join('/')}%2F${segs.slice(i).join('/')}`);
    add(`// at slash ${i + 1}`, `/${segs.slice(0, i).join('/')}//${segs.slice(i).join('/')}`);
    add(`/./ at slash ${i + 1}`, `/${segs.slice(0, i).join('/')}/./${segs.slice(i).join('/')}`);
    add(`/x/../ at slash ${i + 1}`, `/${segs.slice(0, i).join('/')}/x/../${segs.slice(i).join('/')}`);
  });
  add('%2f for the first slash', `/%2f${segs.join('/')}`);
  add('leading //', `/${path}`);
  add('leading /./', `/.${path}`);
  add('leading /x/../', `/x/..${path}`);
  add('leading /x/%2e%2e/', `/x/%2e%2e${path}`);
  add('backslashes', path.replace(/(?!^)\//g, '\\'));
  add('whole path upper case', path.toUpperCase());
  add(';x suffix', `${path};x`);
  add('trailing /', `${path}/`);
  add('trailing ?', `${path}?`);
  add('trailing ??', `${path}??`);
  add('trailing #', `${path}#x`);
  add('trailing %00', `${path}%00`);
  add('trailing %20', `${path}%20`);
  return out;
}

/** A credential that is valid but lacks the route's permission, when one exists. */
function lacking(service: string, access: string | undefined): Record<string, string> | undefined {
  if (service === 'dlq-manager') return access === 'operator' ? { authorization: `Bearer ${VIEWER}` } : undefined;
  if (service === 'intake') {
    const other = Object.entries(KEYS).find(([scope]) => scope !== access);
    return other ? { 'x-api-key': other[1] } : undefined;
  }
  return undefined;
}

const isPublic = (r: Route) => r.access === 'public';

beforeAll(async () => {
  nc = await connectTestClient();
  db = await createTestDatabase('httpauth');
  const common = { NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix, DATABASE_URL: db.url };
  const env: Record<string, Record<string, string>> = {
    'sync-worker': { WORKER_HANDLERS: './test/fixtures/noop-handler.mjs' },
    'retry-scheduler': {},
    'dlq-manager': {
      DLQ_TOKENS: JSON.stringify([
        { name: 'ops', role: 'operator', token: OPERATOR },
        { name: 'grafana', role: 'viewer', token: VIEWER },
      ]),
    },
    intake: { INTAKE_API_KEYS: INTAKE_KEYS },
  };
  const portVar: Record<string, string> = {
    'sync-worker': 'WORKER_PORT',
    'retry-scheduler': 'SCHEDULER_PORT',
    'dlq-manager': 'DLQ_PORT',
    intake: 'INTAKE_PORT',
  };
  // Every service is covered: a new one must say here how it starts.
  const services = readdirSync(join(REPO_ROOT, 'services'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  expect(services).toEqual(Object.keys(env).sort());
  for (const name of services) {
    const port = await freePort();
    ports.set(name, port);
    procs.set(name, startService(name, { ...common, ...env[name], [portVar[name]!]: String(port) }));
  }
  await Promise.all(
    [...procs].map(async ([name, p]) => {
      const line = await p.waitForLog((l) => l.msg === 'http routes', 45_000);
      routes.set(name, line.routes as Route[]);
      await p.waitForLog((l) => l.msg === `${name} running` || l.msg === 'intake listening', 45_000);
    }),
  );

  // Data only an admitted caller may see: a dead letter and a schedule, both carrying MARKER.
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
  const jobId = `job-${prefix}`;
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO dead_letters (job_id, type, original_stream, original_subject, original_seq, dlq_stream, dlq_seq,
       reason, error_class, error, attempts, payload, payload_available, headers, created_at)
     VALUES ($1, 'noop', $2, $3, 1, $4, 1, 'non_retryable', 'validation', $5, 1, $6, true, '{}', now())
     RETURNING id`,
    [
      jobId,
      `${prefix}_JOBS`,
      `${prefix}.jobs.normal.noop`,
      `${prefix}_DLQ`,
      MARKER,
      Buffer.from(JSON.stringify({ MARKER })),
    ],
  );
  await sql.query(
    `INSERT INTO audit_events (id, job_id, type, kind, at, extra) VALUES ($1, $2, 'noop', 'job.accepted', now(), $3)`,
    [`ev-${prefix}`, jobId, JSON.stringify({ note: MARKER })],
  );
  // Both :id routes get the dead letter's number (the timeline's job id may be any string).
  params['dlq-manager'] = { id: rows[0]!.id, type: 'noop', lane: 'normal' };
  const submitted = await raw(ports.get('intake')!, 'POST', '/v1/jobs', { 'x-api-key': KEYS.submit });
  expect(submitted.status).toBe(400); // an empty body: the key got through, the body did not
  const scheduled = await raw(
    ports.get('intake')!,
    'POST',
    '/v1/jobs',
    { 'x-api-key': KEYS.submit },
    JSON.stringify({ type: 'noop', payload: { MARKER }, delay: 3_600_000 }),
  );
  expect(scheduled.status, scheduled.body).toBe(202);
  params.intake = { id: (JSON.parse(scheduled.body) as { scheduleId: string }).scheduleId };
}, 120_000);

afterAll(async () => {
  const codes = await Promise.all([...procs.values()].map((p) => p.stop()));
  agent.destroy();
  await sql?.end();
  await deleteStreams(nc, prefix);
  await nc.close();
  await db?.drop();
  expect(codes.every((c) => c === 0)).toBe(true);
});

describe('HTTP access on every route of every service', () => {
  it('registers only the probes as public; every other route declares a permission', () => {
    for (const [service, list] of routes) {
      expect(list.length, service).toBeGreaterThan(0);
      for (const r of list) {
        if (isPublic(r)) expect(PUBLIC_PROBES, `${service} ${r.method} ${r.url}`).toContain(r.url);
        if (isPublic(r) && r.url === '/v1/session') expect(`${service} ${r.method}`).toBe('dlq-manager POST');
        else expect(r.access, `${service} ${r.method} ${r.url} declares no access`).toBeDefined();
      }
    }
  });

  it('shows admitted callers the data the other checks look for (so they can fail)', async () => {
    const dl = await raw(ports.get('dlq-manager')!, 'GET', `/v1/admin/dead-letters/${params['dlq-manager']!.id}`, {
      authorization: `Bearer ${VIEWER}`,
    });
    expect(dl.status).toBe(200);
    expect(dl.body).toContain(MARKER);
    const read = { 'x-api-key': KEYS['schedules:read'] };
    // The scheduler stores the schedule request shortly after intake's 202.
    const one = await waitFor(
      async () => {
        const a = await raw(ports.get('intake')!, 'GET', `/v1/schedules/${params.intake!.id}`, read);
        return a.status === 200 ? a : undefined;
      },
      { what: 'the schedule to be stored' },
    );
    expect(one.body).toContain(MARKER);
    const list = await raw(ports.get('intake')!, 'GET', '/v1/schedules', read);
    expect(list.status).toBe(200);
    expect(list.body).toContain(params.intake!.id);
  });

  it('refuses every spelling of every protected route to callers it does not admit', async () => {
    const failures: string[] = [];
    const counts = { routes: 0, publicRoutes: 0, variants: 0, protectedVariants: 0, requests: 0, reachedRoute: 0 };
    for (const [service, list] of [...routes].sort(([a], [b]) => a.localeCompare(b))) {
      const port = ports.get(service)!;
      for (const route of list) {
        const path = pathOf(service, route.url);
        const spellings = [{ label: 'as registered', path }, ...variants(path)];
        counts.routes++;
        counts.variants += spellings.length;
        const where = (label: string, p: string, who: string) => `${service} ${route.method} ${p} [${label}, ${who}]`;
        if (isPublic(route)) {
          counts.publicRoutes++;
          // Anyone may call a probe; no spelling of it may fail on the server.
          for (const v of spellings) {
            const a = await raw(port, route.method, v.path);
            counts.requests++;
            if (a.status >= 500 && !(route.url === '/readyz' && a.status === 503)) {
              failures.push(`${where(v.label, v.path, 'anonymous')} → ${a.status}`);
            }
            if (route.url === '/readyz' && a.status === 503) {
              const problems = (JSON.parse(a.body) as { problems: string[] }).problems;
              if (problems.some((p) => p.includes(':'))) {
                failures.push(`${where(v.label, v.path, 'anonymous')} → readiness details: ${a.body}`);
              }
            }
          }
          continue;
        }
        counts.protectedVariants += spellings.length;
        const lack = lacking(service, route.access);
        await Promise.all(
          spellings.map(async (v) => {
            const asIs = v.path === path;
            const tries: [string, Record<string, string>, number[], number | undefined][] = [
              ['no credentials', {}, [400, 401, 404], asIs ? 401 : undefined],
              ['an unknown credential', WRONG, [400, 401, 404], asIs ? 401 : undefined],
              ['a forged session cookie', FORGED_SESSION, [400, 401, 404], asIs ? 401 : undefined],
            ];
            if (lack)
              tries.push(['a credential without the permission', lack, [400, 403, 404], asIs ? 403 : undefined]);
            for (const [who, headers, allowed, exact] of tries) {
              const a = await raw(port, route.method, v.path, headers);
              counts.requests++;
              if (who === 'no credentials' && a.status === 401) counts.reachedRoute++;
              const ok = exact !== undefined ? a.status === exact : allowed.includes(a.status);
              if (!ok) failures.push(`${where(v.label, v.path, who)} → ${a.status} ${a.body.slice(0, 200)}`);
              if (a.body.includes(MARKER)) failures.push(`${where(v.label, v.path, who)} → route data in the body`);
            }
          }),
        );
      }
    }
    console.log(
      `http-auth: ${counts.routes} routes (${counts.publicRoutes} public) × their spellings = ${counts.variants} ` +
        `route-spellings (${counts.protectedVariants} of protected routes), ${counts.requests} requests; ` +
        `${counts.reachedRoute} unauthenticated spellings reached a protected route (401)`,
    );
    expect(failures, failures.slice(0, 40).join('\n')).toEqual([]);
    expect(counts.routes).toBeGreaterThanOrEqual(30);
  }, 120_000);

  it('answers a path no route matches with a 404 that holds nothing but the path', async () => {
    for (const [service, port] of ports) {
      const a = await raw(port, 'GET', '/v1/admin/nope');
      expect(a.status, service).toBe(404);
      expect(JSON.parse(a.body)).toEqual({
        statusCode: 404,
        code: 'NOT_FOUND',
        error: 'Not Found',
        message: 'no route GET /v1/admin/nope',
      });
    }
  });
});
