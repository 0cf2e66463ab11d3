import { createHeaders, H, type MsgHdrs } from './headers.js';

// The wire contract in one place: which headers travel with a job on each hop, and every
// message id Redrive mints. Each service builds its messages with these functions, so no
// service parses another's strings, and a rule changes in one place.

// ---------------------------------------------------------------------------------------------
// Message ids
// ---------------------------------------------------------------------------------------------

/**
 * Every message id Redrive mints, each in a namespace of its own. A producer's idempotency key is
 * published as `key:<type>:<key>` (intake), so no key can equal an internal id, and the same key
 * given for two job types names two jobs. A producer publishing to JetStream directly chooses its
 * own `Nats-Msg-Id`: ids starting with one of these namespaces (`key:`, `fire:`, `retry:`,
 * `redrive:`, `dlq:`, `schedule:`, `cancel:`) are reserved (docs/design.md, "Message ids").
 */
export const msgIds = {
  /** A job submitted through intake with an idempotency key: scoped by its type. */
  producerKey: (type: string, key: string) => `key:${type}:${key}`,
  /** Fire `n` of schedule `scheduleId` (1 for the first): every try of one fire has this id. */
  fire: (scheduleId: string, n: number) => `fire:${scheduleId}:${n}`,
  /**
   * A worker's hand-off of the JOBS message at `seq` to the retry-scheduler, after `attempt`
   * attempts. Each JOBS message is handed off at most once (it is acked then), and a redelivery
   * after a crash keeps its sequence, so the id is stored once; the life and attempt keep ids
   * apart across a stream that was recreated: a redriven job counts its attempts from 0 again
   * under the same job id, and a wait that used no attempt (a limit, a Not-Before) hands off
   * with the same attempt count as the hand-off before it.
   */
  handOff: (jobId: string, life: string, attempt: number, seq: number) => `retry:${jobId}:${life}:${attempt}:${seq}`,
  /** The `n`-th redrive of the dead letter at `dlqSeq` of `dlqStream`. */
  redrive: (dlqStream: string, dlqSeq: number, n: number) => `redrive:${dlqStream}:${dlqSeq}:${n}`,
  /** The dead-letter copy of the message at `seq` of the JOBS stream, whichever path publishes it. */
  deadLetter: (jobsStream: string, seq: number) => `dlq:${jobsStream}:${seq}`,
  /** A request that creates schedule `scheduleId`. */
  scheduleRequest: (scheduleId: string) => `schedule:${scheduleId}`,
  /** A request that cancels schedule `scheduleId`. */
  cancelRequest: (scheduleId: string) => `cancel:${scheduleId}`,
} as const;

/**
 * The job id of a job submitted with an idempotency key: `<type>:<key>`, with `%` and `:` in the
 * key written `%25` and `%3A`. A repeat's fire n is `<job id>:<n>`, so a raw `:` in a key could
 * make one keyed job's id equal another's fire (key `order:1` and fire 1 of key `order`).
 */
export function keyedJobId(type: string, key: string): string {
  return `${type}:${key.replace(/%/g, '%25').replace(/:/g, '%3A')}`;
}

/** Reads the original stream and sequence out of a dead letter's message id; undefined for another id. */
export function parseDeadLetterMsgId(id: string | undefined): { stream: string; seq: number } | undefined {
  const m = /^dlq:(.+):(\d+)$/.exec(id ?? '');
  if (!m) return undefined;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { stream: m[1]!, seq } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Job identity
// ---------------------------------------------------------------------------------------------

/** The id of a job that came with neither `Redrive-Job-Id` nor `Nats-Msg-Id`: where it is stored. */
export function fallbackJobId(stream: string, seq: number): string {
  return `${stream}:${seq}`;
}

/**
 * The life of a job: empty until its first redrive, then the `Redrive-Life` token the redrive
 * that began it wrote (unique per redrive).
 */
export function lifeOf(h: MsgHdrs | undefined): string {
  return h?.get(H.life) ?? '';
}

// ---------------------------------------------------------------------------------------------
// Headers per hop
// ---------------------------------------------------------------------------------------------

/**
 * The hops a job makes between services. On each, the new message gets exactly the headers its
 * hop allows from the message before it, and the hop's own headers are then set by the sender:
 * - `handOff`: a worker sends a failed job to the retry-scheduler (`schedule.retry`);
 * - `schedule`: a scheduler request (`schedule.*`) becomes a row whose fires carry these headers;
 * - `deadLetter`: a job's copy in the DLQ (`dlq.<type>`), with the dead-letter headers added;
 * - `redrive`: a dead letter's next life, published to its JOBS subject or `schedule.redrive`.
 */
export type Hop = 'handOff' | 'schedule' | 'deadLetter' | 'redrive';

// What identifies a job and travels with it through every hop. The job id is set by the
// sender on each hop (it may fall back to the message id), the rest is copied.
const JOB_IDENTITY = [H.maxAttempts, H.idempotencyKey, H.traceparent, H.tracestate, H.repeatId];

const ALLOWED: Record<Hop, readonly string[]> = {
  handOff: [...JOB_IDENTITY, H.life],
  // The scheduler sets the job id, attempt, schedule and message id of each fire itself.
  schedule: [...JOB_IDENTITY, H.life],
  deadLetter: [...JOB_IDENTITY, H.life],
  // A redrive starts a new life: the sender sets the job id, a new Redrive-Life and attempt 0.
  redrive: JOB_IDENTITY,
};
const ALLOWED_LOWER: Record<Hop, ReadonlySet<string>> = Object.fromEntries(
  Object.entries(ALLOWED).map(([hop, names]) => [hop, new Set(names.map((n) => n.toLowerCase()))]),
) as unknown as Record<Hop, ReadonlySet<string>>;

/**
 * True for a producer's own header (`X-Tenant`, `Content-Type`…): one outside the `Redrive-` and
 * `Nats-` namespaces, which belong to the contract and to JetStream. A producer's headers travel
 * with its job on every hop, for its handler to read.
 */
function isProducerHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return !lower.startsWith('redrive-') && !lower.startsWith('nats-');
}

/** True when header `name` travels on `hop`. */
function travels(hop: Hop, name: string): boolean {
  return ALLOWED_LOWER[hop].has(name.toLowerCase()) || isProducerHeader(name);
}

/** The headers a job's message carries on to `hop` (a new set; the sender then adds its own). */
export function carryHeaders(hop: Hop, from: MsgHdrs | Readonly<Record<string, string>> | undefined): MsgHdrs {
  const h = createHeaders();
  for (const [k, v] of entries(from)) if (travels(hop, k)) h.append(k, v);
  return h;
}

/** The headers of `from` that travel on `hop`, as [name, value] pairs (a name may repeat). */
export function carriedEntries(
  hop: Hop,
  from: MsgHdrs | Readonly<Record<string, string>> | undefined,
): [string, string][] {
  return entries(from).filter(([k]) => travels(hop, k));
}

function entries(from: MsgHdrs | Readonly<Record<string, string>> | undefined): [string, string][] {
  if (!from) return [];
  if (isMsgHdrs(from)) {
    const out: [string, string][] = [];
    for (const k of from.keys()) for (const v of from.values(k)) out.push([k, v]);
    return out;
  }
  return Object.entries(from);
}

function isMsgHdrs(x: MsgHdrs | Readonly<Record<string, string>>): x is MsgHdrs {
  return typeof (x as MsgHdrs).keys === 'function' && typeof (x as MsgHdrs).values === 'function';
}
