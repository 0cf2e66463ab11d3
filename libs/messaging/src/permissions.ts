// Over 400 lines: every role's NATS permissions in one place, so a change to who may do what is one diff.
import { EVENT_KINDS, type EventKind } from './events.js';
import { pausesBucket, pausesStream } from './pauses.js';
import { SCHEDULER_OPS, SCHEDULER_SERVICE_NAME } from './schedule.js';
import { Topology, type StreamRole } from './topology.js';

// NATS is Redrive's trust boundary: whoever may publish on a subject can make a service act on
// it. This module is the one description of who may do what on NATS: each service's own user
// with exactly the subjects its code uses, and the users of people and programs outside the
// services. Everything that configures a nats-server for Redrive (scripts/nats-config.ts for
// compose and Kubernetes, `pnpm stack`, the tests) renders it from here.

/** The four services, each with a NATS user of its own. */
export const SERVICE_ROLES = ['intake', 'sync-worker', 'retry-scheduler', 'dlq-manager'] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/**
 * Users outside the services: `operator` (every dlq-manager endpoint, the scheduler's API,
 * read-only JetStream, replays by hand), `viewer` (dlq-manager's read-only endpoints) and
 * `producer` (jobs and schedule requests straight to JetStream, as `nats pub jobs.normal.<type>`
 * does).
 */
export const CLIENT_ROLES = ['operator', 'viewer', 'producer'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];

export const NATS_ROLES = [...SERVICE_ROLES, ...CLIENT_ROLES] as const;
export type NatsRole = ServiceRole | ClientRole;

/** The lifecycle events each service emits: the only `events.<kind>` subjects it may publish. */
export const EVENTS_EMITTED_BY: Readonly<Record<ServiceRole, readonly EventKind[]>> = {
  intake: ['job.accepted'],
  // Every other job kind: the worker reports what happens to the jobs it runs.
  'sync-worker': EVENT_KINDS.filter((k) => !k.startsWith('queue.') && k !== 'job.accepted' && k !== 'job.cancelled'),
  'retry-scheduler': ['job.cancelled'],
  // dlq-manager writes its own audit rows (job.dead_lettered, job.redriven …) straight to Postgres;
  // a pause or resume changes the PAUSES bucket, not Postgres, so it is recorded as an event.
  'dlq-manager': ['queue.paused', 'queue.resumed'],
};

/**
 * Who may change a stream's configuration in place (`$JS.API.STREAM.UPDATE`): the service
 * that reads it (and the worker for JOBS, whose subjects it extends with the types it serves).
 * Every service may create a stream that is missing, so any of them can start first; a service
 * that finds a stream configured differently and may not change it logs that and leaves it.
 */
export const STREAM_OWNERS: Readonly<Record<StreamRole, ServiceRole>> = {
  jobs: 'sync-worker',
  completions: 'sync-worker',
  schedule: 'retry-scheduler',
  dlq: 'dlq-manager',
  advisories: 'dlq-manager',
  events: 'dlq-manager',
};

/** The retry-scheduler's durable consumer on SCHEDULE, shared by its replicas. */
export const SCHEDULER_CONSUMER = 'retry-scheduler';

/** dlq-manager's durable consumers, shared by its replicas: DLQ, ADVISORIES and EVENTS. */
export const DLQ_MANAGER_CONSUMERS = {
  recorder: 'dlq-manager-recorder',
  advisories: 'dlq-manager-advisories',
  audit: 'dlq-manager-audit',
} as const;

/** The NATS micro service name of dlq-manager (`nats micro ls`). */
export const DLQ_MANAGER_SERVICE_NAME = 'redrive-dlq-manager';

/**
 * dlq-manager's endpoints that only read (`<root>.<name>`): a viewer may call these. Every
 * other endpoint changes something and answers only to an operator.
 */
export const DLQ_MANAGER_READ_ENDPOINTS: readonly string[] = [
  'list',
  'get',
  'stats',
  'timeline',
  'operation',
  'queues',
  'jobs',
  'job',
];

/** What one user may publish and subscribe to; anything not allowed is refused by nats-server. */
export interface NatsPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[]; deny: string[] };
  /** May answer the requests it receives (one reply each, within five minutes) whatever their inbox. */
  allowResponses: boolean;
}

/**
 * The NATS user name of a role in one installation: `redrive-<role>`, or
 * `redrive-<prefix>-<role>` under REDRIVE_PREFIX (installations can share one server).
 */
export function natsUserName(prefix: string, role: NatsRole): string {
  return prefix ? `redrive-${prefix}-${role}` : `redrive-${role}`;
}

/**
 * The inbox prefix a role's connection uses for replies (JetStream API answers, PubAcks, pulled
 * messages, request replies): `_INBOX_<user name>`. Each user may subscribe only under its own,
 * so no client can read another one's replies (the default `_INBOX.>` would be shared).
 */
export function natsInboxPrefix(prefix: string, role: NatsRole): string {
  return `_INBOX_${natsUserName(prefix, role)}`;
}

/**
 * The environment variable that holds a role's password for nats-server (the generated config
 * refers to it) and for the local stack: `REDRIVE_NATS_PASSWORD_<ROLE>`, or
 * `REDRIVE_NATS_PASSWORD_<PREFIX>_<ROLE>` under a prefix.
 */
export function natsPasswordVariable(prefix: string, role: NatsRole): string {
  return `REDRIVE_NATS_PASSWORD_${prefix ? `${prefix}_` : ''}${role}`.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * A password nats-server reads back from its environment exactly as written: it parses an
 * environment value as a config value, so a number, a `#` (a comment) or a space would change
 * it. Letters first, then letters, digits, `-` and `_`, at least 20.
 */
export const NATS_PASSWORD_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{19,}$/;

const api = (rest: string) => `$JS.API.${rest}`;

/** Subjects no client of Redrive's account may publish, whatever else it is allowed. */
const NEVER_PUBLISH = ['$JS.EVENT.>', '$SYS.>'];

/** The `$SRV` discovery subjects of micro services (PING, INFO, STATS; of all, by name, by id). */
function microDiscovery(...names: string[]): string[] {
  return ['$SRV.*', ...names.flatMap((name) => [`$SRV.*.${name}`, `$SRV.*.${name}.*`])];
}

/** Creating, reading, pulling from and acknowledging one durable consumer. */
function consumerUse(stream: string, consumer: string): string[] {
  return [
    api(`CONSUMER.INFO.${stream}.${consumer}`),
    api(`CONSUMER.CREATE.${stream}.${consumer}`),
    api(`CONSUMER.CREATE.${stream}.${consumer}.>`),
    api(`CONSUMER.MSG.NEXT.${stream}.${consumer}`),
    `$JS.ACK.${stream}.${consumer}.>`,
  ];
}

/** What every service does at start: check, and create when missing, every Redrive stream. */
function provisioning(topology: Topology, role: ServiceRole): string[] {
  const roles = Object.keys(topology.streams) as StreamRole[];
  return [
    api('INFO'),
    ...roles.flatMap((r) => [api(`STREAM.INFO.${topology.streams[r]}`), api(`STREAM.CREATE.${topology.streams[r]}`)]),
    ...roles.filter((r) => STREAM_OWNERS[r] === role).map((r) => api(`STREAM.UPDATE.${topology.streams[r]}`)),
  ];
}

/**
 * The PAUSES bucket (pauses.ts): creating it when missing, and watching it with an ordered
 * consumer (created, pulled, recreated after a NATS restart). Its owner also changes its
 * configuration.
 */
function pausesWatch(topology: Topology, owner: boolean): string[] {
  const kv = pausesStream(topology);
  return [
    api(`STREAM.INFO.${kv}`),
    api(`STREAM.CREATE.${kv}`),
    ...(owner ? [api(`STREAM.UPDATE.${kv}`)] : []),
    api(`CONSUMER.CREATE.${kv}.>`),
    api(`CONSUMER.INFO.${kv}.*`),
    api(`CONSUMER.DELETE.${kv}.*`),
    api(`CONSUMER.MSG.NEXT.${kv}.*`),
  ];
}

const events = (topology: Topology, role: ServiceRole) => EVENTS_EMITTED_BY[role].map((k) => topology.eventSubject(k));

/**
 * Exactly what `role` may publish and subscribe to in the installation `topology` describes,
 * read off the services' code: a change to what a service publishes, reads or calls needs a
 * change here (test/integration/nats-permissions.test.ts runs the services with these).
 */
export function natsPermissions(topology: Topology, role: NatsRole): NatsPermissions {
  const s = topology.streams;
  const prefix = topology.options.prefix;
  const inbox = `${natsInboxPrefix(prefix, role)}.>`;
  const jobs = topology.jobSubject('*', '*');
  const adminRoot = topology.dlqManagerApiRoot;
  // Only dlq-manager removes messages from JOBS (a dead-lettered original); nobody else may,
  // even if a later allow were to be written too broadly.
  const noJobsDeletes = role === 'dlq-manager' ? [] : [api(`STREAM.MSG.DELETE.${s.jobs}`)];
  const none: NatsPermissions = {
    publish: { allow: [], deny: [...NEVER_PUBLISH, ...noJobsDeletes] },
    subscribe: { allow: [inbox], deny: [] },
    allowResponses: false,
  };
  const withPublish = (allow: string[], more: Partial<NatsPermissions> = {}): NatsPermissions => ({
    ...none,
    ...more,
    publish: { ...none.publish, allow },
    subscribe: { ...none.subscribe, ...more.subscribe, allow: [inbox, ...(more.subscribe?.allow ?? [])] },
  });

  switch (role) {
    case 'intake':
      return withPublish([
        ...provisioning(topology, role),
        jobs,
        topology.scheduleSubject('delay'),
        topology.scheduleSubject('repeat'),
        ...events(topology, role),
        ...SCHEDULER_OPS.map((op) => topology.schedulerApiSubject(op)),
        // Which job types some worker serves (the consumers' filters).
        api(`CONSUMER.LIST.${s.jobs}`),
      ]);
    case 'sync-worker':
      return withPublish([
        ...provisioning(topology, role),
        topology.scheduleSubject('retry'),
        // A repeating job's handler ending its repeat (ctx.stopRepeat()).
        topology.scheduleSubject('cancel'),
        topology.dlqSubject('*'),
        topology.completionSubject('*'),
        ...events(topology, role),
        api(`STREAM.MSG.GET.${s.completions}`),
        // Its consumers worker-<priority>-<type>: the types are the deployment's, so any name.
        api(`CONSUMER.LIST.${s.jobs}`),
        api(`CONSUMER.INFO.${s.jobs}.*`),
        api(`CONSUMER.CREATE.${s.jobs}.*`),
        api(`CONSUMER.CREATE.${s.jobs}.*.>`),
        api(`CONSUMER.MSG.NEXT.${s.jobs}.*`),
        `$JS.ACK.${s.jobs}.>`,
        // Paused types and lanes: watched, never changed.
        ...pausesWatch(topology, false),
      ]);
    case 'retry-scheduler':
      return withPublish(
        [
          ...provisioning(topology, role),
          // Fires: the scheduler checks that a request names a jobs.<priority>.<type> subject.
          jobs,
          ...events(topology, role),
          ...consumerUse(s.schedule, SCHEDULER_CONSUMER),
        ],
        {
          // Its micro service (api.ts): the endpoints, and `nats micro ls/info/stats`.
          subscribe: {
            allow: [
              ...SCHEDULER_OPS.map((op) => topology.schedulerApiSubject(op)),
              ...microDiscovery(SCHEDULER_SERVICE_NAME),
            ],
            deny: [],
          },
          allowResponses: true,
        },
      );
    case 'dlq-manager':
      return withPublish(
        [
          ...provisioning(topology, role),
          // Dead letters of the jobs the server gave up on; redrives, now or later.
          topology.dlqSubject('*'),
          jobs,
          topology.scheduleSubject('redrive'),
          ...consumerUse(s.dlq, DLQ_MANAGER_CONSUMERS.recorder),
          ...consumerUse(s.advisories, DLQ_MANAGER_CONSUMERS.advisories),
          ...consumerUse(s.events, DLQ_MANAGER_CONSUMERS.audit),
          // An advisory is a claim about JOBS: it is checked against the consumer it names and
          // the message before the original is copied to the DLQ and removed.
          api(`CONSUMER.LIST.${s.jobs}`),
          api(`CONSUMER.INFO.${s.jobs}.*`),
          api(`STREAM.MSG.GET.${s.jobs}`),
          api(`STREAM.MSG.DELETE.${s.jobs}`),
          // Removing DLQ messages whose entries were deleted.
          api(`STREAM.MSG.DELETE.${s.dlq}`),
          // The audit lag gauge: the oldest event its consumer has not acknowledged.
          api(`STREAM.MSG.GET.${s.events}`),
          // Pausing and resuming job types and lanes (a key per pause), and reading them back;
          // each change is recorded as its event (queue.paused, queue.resumed).
          ...pausesWatch(topology, true),
          `$KV.${pausesBucket(topology)}.>`,
          ...events(topology, role),
        ],
        {
          subscribe: { allow: [`${adminRoot}.*`, ...microDiscovery(DLQ_MANAGER_SERVICE_NAME)], deny: [] },
          allowResponses: true,
        },
      );
    case 'operator':
      return withPublish([
        `${adminRoot}.*`,
        ...microDiscovery(DLQ_MANAGER_SERVICE_NAME, SCHEDULER_SERVICE_NAME),
        ...SCHEDULER_OPS.map((op) => topology.schedulerApiSubject(op)),
        topology.scheduleSubject('cancel'),
        // Replaying a dead letter by hand while dlq-manager is down (docs/operations.md): no
        // more than its redrive endpoint already lets an operator do.
        jobs,
        topology.scheduleSubject('redrive'),
        // Looking, never changing: stream and consumer state, and the messages of the streams
        // that hold dead letters, events and advisories.
        api('INFO'),
        ...Object.values(s).flatMap((name) => [
          api(`STREAM.INFO.${name}`),
          api(`CONSUMER.LIST.${name}`),
          api(`CONSUMER.NAMES.${name}`),
          api(`CONSUMER.INFO.${name}.*`),
        ]),
        ...[s.dlq, s.events, s.advisories].map((name) => api(`STREAM.MSG.GET.${name}`)),
        api(`DIRECT.GET.${s.dlq}`),
        api(`DIRECT.GET.${s.dlq}.>`),
        // What is paused: `nats kv ls/get <prefix>_PAUSES` (pausing goes through dlq-manager, audited).
        api(`STREAM.INFO.${pausesStream(topology)}`),
        api(`DIRECT.GET.${pausesStream(topology)}.>`),
      ]);
    case 'viewer':
      return withPublish([
        ...DLQ_MANAGER_READ_ENDPOINTS.map((e) => `${adminRoot}.${e}`),
        ...microDiscovery(DLQ_MANAGER_SERVICE_NAME),
      ]);
    case 'producer':
      return withPublish([jobs, topology.scheduleSubject('delay'), topology.scheduleSubject('repeat')]);
  }
}

/** How one user proves who it is. */
export type NatsCredential =
  /** nats-server reads the password from this environment variable (no secret in the file). */
  | { passwordVariable: string }
  /** A password written into the file (the local stack and tests, in files only they read). */
  | { password: string }
  /** An nkey: the user holds the seed, the server only the public key (`U…`). */
  | { nkey: string };

export interface NatsAuthConfigOptions {
  /** The installations this server carries (their REDRIVE_PREFIX; `''` for none). */
  prefixes: readonly string[];
  /** The roles that get a user (all by default). */
  roles?: readonly NatsRole[];
  /** How each user authenticates; a password from `natsPasswordVariable` by default. */
  credential?: (user: { prefix: string; role: NatsRole; name: string }) => NatsCredential;
  /** The account holding Redrive's streams and users (`REDRIVE`). */
  account?: string;
}

export const REDRIVE_ACCOUNT = 'REDRIVE';

const quote = (s: string) => JSON.stringify(s);
const list = (key: string, items: readonly string[]) =>
  items.length === 0 ? [`${key}: []`] : [`${key}: [`, ...items.map((i) => `    ${quote(i)}`), '  ]'];

/**
 * nats-server configuration for Redrive's authorization: a JetStream account with one user per
 * role and installation, each with `natsPermissions`, and a system account no client logs in
 * to (JetStream's advisories come from the server itself; no user may publish them). Include
 * it in a server configuration, or pass it with `-c` next to `-js`.
 */
export function renderNatsAuthConfig(opts: NatsAuthConfigOptions): string {
  const account = opts.account ?? REDRIVE_ACCOUNT;
  const roles = opts.roles ?? NATS_ROLES;
  const credential =
    opts.credential ?? (({ prefix, role }) => ({ passwordVariable: natsPasswordVariable(prefix, role) }));
  const users: string[] = [];
  const seen = new Set<string>();
  for (const prefix of opts.prefixes) {
    const topology = new Topology({ prefix });
    for (const role of roles) {
      const name = natsUserName(prefix, role);
      if (seen.has(name)) throw new Error(`two users would be named ${name}`);
      seen.add(name);
      const cred = credential({ prefix, role, name });
      const p = natsPermissions(topology, role);
      let auth: string;
      if ('nkey' in cred) {
        if (!/^U[A-Z2-7]{55}$/.test(cred.nkey)) throw new Error(`${name}: not a user nkey (U…, 56 characters)`);
        auth = `nkey: ${quote(cred.nkey)}`;
      } else if ('password' in cred) {
        if (!NATS_PASSWORD_PATTERN.test(cred.password))
          throw new Error(`${name}: a password must match ${NATS_PASSWORD_PATTERN.source}`);
        auth = `user: ${quote(name)}, password: ${quote(cred.password)}`;
      } else {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(cred.passwordVariable))
          throw new Error(`${name}: not an environment variable name: ${cred.passwordVariable}`);
        auth = `user: ${quote(name)}, password: $${cred.passwordVariable}`;
      }
      const block = (name: string, rules: { allow: string[]; deny: string[] }) => [
        `${name}: {`,
        ...list('  allow', rules.allow),
        ...(rules.deny.length ? list('  deny', rules.deny) : []),
        '}',
      ];
      const perms = [
        ...block('publish', p.publish),
        ...block('subscribe', p.subscribe),
        // One reply to each request received, within five minutes, whatever its reply subject.
        ...(p.allowResponses ? ['allow_responses: { max: 1, expires: "5m" }'] : []),
      ];
      users.push(
        [
          `      # ${role}${prefix ? ` of installation "${prefix}"` : ''}`,
          `      {`,
          `        ${auth}`,
          `        permissions: {`,
          ...perms.map((line) => `          ${line}`),
          `        }`,
          `      }`,
        ].join('\n'),
      );
    }
  }
  return [
    `# Redrive's NATS authorization (see docs/security.md): one JetStream account, ${account}, with`,
    '# one user per service and per client role, each allowed exactly the subjects it uses.',
    '# Generated from libs/messaging/src/permissions.ts; change that, not this.',
    '',
    'system_account: SYS',
    '',
    'accounts {',
    "  # The server's own account: JetStream advisories and $SYS events. No client logs in to it.",
    '  SYS: {}',
    `  ${account}: {`,
    '    jetstream: enabled',
    '    users: [',
    users.join('\n'),
    '    ]',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Every lifecycle event kind has exactly one service that emits it (checked by the tests). */
export function eventEmitters(): Map<EventKind, ServiceRole[]> {
  const out = new Map<EventKind, ServiceRole[]>(EVENT_KINDS.map((k) => [k, []]));
  for (const role of SERVICE_ROLES) for (const k of EVENTS_EMITTED_BY[role]) out.get(k)!.push(role);
  return out;
}
