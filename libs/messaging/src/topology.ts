import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type StreamConfig,
} from '@nats-io/jetstream';
import { PRIORITIES, type Priority } from './subjects.js';

const NS_PER_MS = 1_000_000;

/** Limits and placement of the streams; every field has a default matching DESIGN.md. */
export interface TopologyOptions {
  /** Prepended to stream names (`p_JOBS`) and subjects (`p.jobs.>`); empty for none. */
  prefix: string;
  replicas: number;
  storage: 'file' | 'memory';
  jobs: { maxAgeMs: number; maxBytes: number; maxMsgs: number; duplicateWindowMs: number };
  dlq: { maxAgeMs: number };
  advisories: { maxAgeMs: number };
  events: { maxAgeMs: number; maxBytes: number };
  schedule: { maxAgeMs: number };
  /** How long the completion record of an idempotency-keyed job is kept. */
  completions: { maxAgeMs: number };
}

export const DEFAULT_TOPOLOGY: TopologyOptions = {
  prefix: '',
  replicas: 1,
  storage: 'file',
  jobs: { maxAgeMs: 0, maxBytes: -1, maxMsgs: -1, duplicateWindowMs: 15 * 60_000 },
  dlq: { maxAgeMs: 30 * 86_400_000 },
  advisories: { maxAgeMs: 7 * 86_400_000 },
  events: { maxAgeMs: 7 * 86_400_000, maxBytes: -1 },
  schedule: { maxAgeMs: 0 },
  completions: { maxAgeMs: 7 * 86_400_000 },
};

/** What a durable worker consumer on JOBS looks like. */
export interface WorkerConsumerOptions {
  ackWaitMs: number;
  maxDeliver: number;
  maxAckPending: number;
}

/** Subject roots of an unprefixed installation; a prefix equal to one would overlap it. */
export const RESERVED_PREFIXES: readonly string[] = ['jobs', 'dlq', 'events', 'schedule', 'completions', '$JS'];

export type StreamRole = 'jobs' | 'dlq' | 'advisories' | 'events' | 'schedule' | 'completions';

/** Names, subjects and stream configurations of one Redrive installation (one prefix). */
export class Topology {
  readonly options: TopologyOptions;
  readonly streams: Readonly<Record<StreamRole, string>>;
  private readonly subjectPrefix: string;

  constructor(options: Partial<TopologyOptions> = {}) {
    this.options = { ...DEFAULT_TOPOLOGY, ...options };
    const { prefix } = this.options;
    if (prefix !== '' && !/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(prefix)) {
      throw new Error(`invalid topology prefix "${prefix}": letters, digits, "_" or "-", at most 32`);
    }
    // "jobs" as a prefix would put its subjects (jobs.jobs.>) inside an unprefixed jobs.>.
    if (RESERVED_PREFIXES.includes(prefix)) {
      throw new Error(`invalid topology prefix "${prefix}": ${RESERVED_PREFIXES.join(', ')} are subject roots`);
    }
    const name = (base: string) => (prefix ? `${prefix}_${base}` : base);
    this.subjectPrefix = prefix ? `${prefix}.` : '';
    this.streams = {
      jobs: name('JOBS'),
      dlq: name('DLQ'),
      advisories: name('ADVISORIES'),
      events: name('EVENTS'),
      schedule: name('SCHEDULE'),
      completions: name('COMPLETIONS'),
    };
  }

  /** `jobs.<priority>.<type>` under the prefix. */
  jobSubject(priority: Priority | '*', type: string): string {
    return `${this.subjectPrefix}jobs.${priority}.${type}`;
  }

  /** The JOBS subjects of `types`, in every priority lane. */
  jobSubjectsOf(types: readonly string[]): string[] {
    return types.flatMap((type) => PRIORITIES.map((priority) => this.jobSubject(priority, type)));
  }

  /** The wildcard every job subject matches (`jobs.>` under the prefix). */
  get allJobsSubject(): string {
    return `${this.subjectPrefix}jobs.>`;
  }

  /** Splits a JOBS subject into priority and type; undefined when it is not one. */
  parseJobSubject(subject: string): { priority: Priority; type: string } | undefined {
    if (!subject.startsWith(`${this.subjectPrefix}jobs.`)) return undefined;
    const rest = subject.slice(this.subjectPrefix.length + 'jobs.'.length).split('.');
    if (rest.length !== 2) return undefined;
    const [priority, type] = rest as [string, string];
    return (PRIORITIES as readonly string[]).includes(priority) ? { priority: priority as Priority, type } : undefined;
  }

  dlqSubject(type: string): string {
    return `${this.subjectPrefix}dlq.${type}`;
  }

  eventSubject(kind: string): string {
    return `${this.subjectPrefix}events.${kind}`;
  }

  /** Where the completion record of one idempotency-keyed job lives (`token` is a hash of its id). */
  completionSubject(token: string): string {
    return `${this.subjectPrefix}completions.${token}`;
  }

  scheduleSubject(kind: string): string {
    return `${this.subjectPrefix}schedule.${kind}`;
  }

  /**
   * The subject root of the retry-scheduler's micro service, `[<prefix>.]scheduler`: plain core
   * NATS subjects outside every stream (a stream capturing them would answer requests itself).
   */
  get schedulerApiRoot(): string {
    return `${this.subjectPrefix}scheduler`;
  }

  /** One endpoint of the retry-scheduler's micro service (`scheduler.<op>`: list, get, cancel). */
  schedulerApiSubject(op: 'list' | 'get' | 'cancel'): string {
    return `${this.schedulerApiRoot}.${op}`;
  }

  /**
   * The subject root of dlq-manager's NATS endpoints, `[<prefix>.]dlq-manager` (`<root>.list`,
   * `<root>.redrive` …): outside every stream (a stream capturing `dlq.>` would swallow requests
   * under `dlq.`), and under the installation's prefix like every other subject.
   */
  get dlqManagerApiRoot(): string {
    return `${this.subjectPrefix}dlq-manager`;
  }

  /** The durable consumer that serves one job type in one priority lane. */
  workerConsumerName(priority: Priority, type: string): string {
    return `worker-${priority}-${type}`;
  }

  /** The stream configurations Redrive needs, in provisioning order. */
  streamConfigs(): StreamConfig[] {
    const o = this.options;
    const common = {
      storage: o.storage === 'memory' ? StorageType.Memory : StorageType.File,
      num_replicas: o.replicas,
    };
    const p = this.subjectPrefix;
    return [
      {
        ...common,
        name: this.streams.jobs,
        description: 'Redrive jobs: jobs.<priority>.<type>',
        // No subjects here: JOBS captures exactly the subjects of the types some worker serves,
        // added by each worker as it registers its types (serveJobTypes), so a publish to a type
        // no worker consumes is refused to its publisher instead of stored and dropped.
        // Interest retention removes a job once every consumer that wants it has acked it,
        // so finished jobs do not fill the stream; discard-new makes a full stream refuse new
        // publishes (intake answers 503) instead of silently dropping unfinished jobs.
        retention: RetentionPolicy.Interest,
        discard: DiscardPolicy.New,
        max_age: o.jobs.maxAgeMs * NS_PER_MS,
        max_bytes: o.jobs.maxBytes,
        max_msgs: o.jobs.maxMsgs,
        duplicate_window: o.jobs.duplicateWindowMs * NS_PER_MS,
        allow_direct: true,
      },
      {
        ...common,
        name: this.streams.dlq,
        description: 'Redrive dead letters: dlq.<type>',
        subjects: [`${p}dlq.>`],
        // Limits retention so operators can browse dead letters with `nats stream view`.
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: o.dlq.maxAgeMs * NS_PER_MS,
        duplicate_window: 2 * 60_000 * NS_PER_MS,
        allow_direct: true,
      },
      {
        ...common,
        name: this.streams.advisories,
        description: 'JetStream advisories about jobs the server gave up on',
        subjects: [
          `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.streams.jobs}.*`,
          `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${this.streams.jobs}.*`,
        ],
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: o.advisories.maxAgeMs * NS_PER_MS,
      },
      {
        ...common,
        name: this.streams.events,
        description: 'Redrive lifecycle events: events.<kind>',
        subjects: [`${p}events.>`],
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: o.events.maxAgeMs * NS_PER_MS,
        max_bytes: o.events.maxBytes,
        duplicate_window: 2 * 60_000 * NS_PER_MS,
      },
      {
        ...common,
        name: this.streams.schedule,
        description: 'Requests to the retry-scheduler: schedule.<kind>',
        subjects: [`${p}schedule.>`],
        retention: RetentionPolicy.Workqueue,
        discard: DiscardPolicy.New,
        max_age: o.schedule.maxAgeMs * NS_PER_MS,
        duplicate_window: 2 * 60_000 * NS_PER_MS,
      },
      {
        ...common,
        name: this.streams.completions,
        description: 'Completion records of idempotency-keyed jobs: completions.<hash of job id>',
        subjects: [`${p}completions.>`],
        // One record per job, written once (the worker publishes with an expected last subject
        // sequence of 0), kept as long as a keyed job may come back. Durable, unlike Redis, so
        // "at most one success per key" holds through a Redis outage.
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_msgs_per_subject: 1,
        max_age: o.completions.maxAgeMs * NS_PER_MS,
        allow_direct: true,
      },
    ] as StreamConfig[];
  }

  /** The durable consumers that serve `types` in every priority lane. */
  workerConsumerConfigs(types: readonly string[], opts: WorkerConsumerOptions): ConsumerConfig[] {
    return types.flatMap((type) =>
      PRIORITIES.map(
        (priority) =>
          ({
            durable_name: this.workerConsumerName(priority, type),
            description: `Redrive workers for ${type} jobs, ${priority} priority`,
            filter_subject: this.jobSubject(priority, type),
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ack_wait: opts.ackWaitMs * NS_PER_MS,
            // The server-side safety net for jobs that crash or hang a worker: after this many
            // deliveries it gives up and publishes a MAX_DELIVERIES advisory for the DLQ path.
            max_deliver: opts.maxDeliver,
            max_ack_pending: opts.maxAckPending,
          }) as ConsumerConfig,
      ),
    );
  }
}
