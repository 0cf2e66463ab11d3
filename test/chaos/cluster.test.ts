import { join } from 'node:path';
import { startNatsCluster, type ClusterNode, type NatsCluster } from '../../scripts/infra/nats-cluster.js';
import { chaosRound, sleep, type FaultWindow, type NatsUnderTest, type Submission } from './harness.js';

// The chaos round on a three-node NATS cluster (`pnpm test:chaos --cluster`): the same load,
// reconciliation and other faults as chaos.test.ts (harness.ts), with every service given all
// three servers and STREAM_REPLICAS=3. Instead of the one server's restart, once 30% of the jobs
// are submitted: SIGKILL the JOBS stream leader, then the meta leader (each started again a few
// seconds later), then a rolling restart (SIGTERM, wait, start, wait until current) of every
// node in turn. It prints what the leader changes cost (no assertion on it): the longest gap
// between two accepted submissions, the submissions answered 503, and the p99 submission
// latency during the changes and outside them.

interface ClusterNats extends NatsUnderTest {
  cluster: NatsCluster;
}

/** How long a killed node stays down before it is started again. */
const DOWN_MS = 4_000;
/** Quiet time between two faults, so each one's cost is measured on its own. */
const SETTLE_MS = 5_000;

/** The cluster the round runs on, for the report. */
let theCluster: NatsCluster | undefined;

const ms = (n: number) => `${Math.round(n).toLocaleString('en-US')} ms`;

function p99(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)];
}

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  a.start < b.end && b.start < a.end;

type Span = { start: number; end: number };

/** The longest stretch between two consecutive 202 answers, among the stretches that overlap `within`. */
function longestGap(accepted: readonly Submission[], within?: Span): (Span & { length: number }) | undefined {
  let best: (Span & { length: number }) | undefined;
  for (let i = 1; i < accepted.length; i++) {
    const gap = { start: accepted[i - 1]!.end, end: accepted[i]!.end };
    if (within && !overlaps(gap, within)) continue;
    const length = gap.end - gap.start;
    if (!best || length > best.length) best = { ...gap, length };
  }
  return best;
}

/** p99 and the slowest of the submissions' latencies. */
function latencies(list: readonly Submission[]): string {
  const all = list.map((s) => s.end - s.start);
  const p = p99(all);
  return p === undefined ? 'none' : `p99 ${ms(p)}, max ${ms(Math.max(...all))} (of ${list.length})`;
}

interface StreamDetail {
  name: string;
  state: { messages: number; first_seq: number; last_seq: number };
  cluster?: { leader?: string };
  consumer_detail?: { name: string; num_pending: number; num_ack_pending: number; num_redelivered: number }[];
}

/**
 * What each node holds of JOBS once every job has ended: with interest retention every acked
 * job is removed, so a replica still holding messages has kept jobs its peers dropped (or the
 * other way round). Printed, not asserted: the chaos line is what must hold.
 */
async function jobsReplicas(cluster: NatsCluster): Promise<string> {
  const views = await Promise.all(
    cluster.nodes.map(async (n) => {
      try {
        const res = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz?streams=true&consumers=true`);
        const body = (await res.json()) as { account_details?: { stream_detail?: StreamDetail[] }[] };
        const jobs = body.account_details?.flatMap((a) => a.stream_detail ?? []).find((d) => d.name === 'JOBS');
        if (!jobs) return `${n.name} has no JOBS`;
        const pending = (jobs.consumer_detail ?? []).reduce((t, c) => t + c.num_pending + c.num_ack_pending, 0);
        return (
          `${n.name}${jobs.cluster?.leader === n.name ? ' (leader)' : ''} ${jobs.state.messages} messages ` +
          `(seq ${jobs.state.first_seq}..${jobs.state.last_seq}), ${pending} pending or unacked in its consumers`
        );
      } catch (err) {
        return `${n.name}: ${(err as Error).message}`;
      }
    }),
  );
  return views.join('; ');
}

async function report({
  submissions,
  windows,
}: {
  submissions: readonly Submission[];
  windows: readonly FaultWindow[];
}) {
  const accepted = submissions.filter((s) => s.status === 202).sort((a, b) => a.end - b.end);
  const during = (s: Span) => windows.some((w) => overlaps(s, w));
  const gap = longestGap(accepted);
  const gapIn = gap ? windows.filter((w) => overlaps(gap, w)).map((w) => w.label) : [];
  const refused503 = submissions.filter((s) => s.status === 503);
  const otherRefused = submissions.filter((s) => s.status !== 202 && s.status !== 503);
  // 0: no answer at all (intake's connection reset, say).
  const otherStatuses = otherRefused.length
    ? ` (status ${[...new Set(otherRefused.map((r) => r.status))].join(', ')})`
    : '';
  console.log(
    `leader changes: longest gap in acceptance ${gap ? ms(gap.length) : 'none'}` +
      `${gapIn.length ? ` (during ${gapIn.join(', ')})` : ' (outside the leader changes)'}, ` +
      `answered 503 ${refused503.length} (${refused503.filter(during).length} during the changes), ` +
      `other refusals ${otherRefused.length}${otherStatuses}; submission latency during the changes ` +
      `${latencies(submissions.filter(during))}, outside them ${latencies(submissions.filter((s) => !during(s)))}`,
  );
  for (const w of windows) {
    const inside = submissions.filter((s) => overlaps(s, w));
    const g = longestGap(accepted, w);
    console.log(
      `  ${w.label}: ${ms(w.end - w.start)}${w.note ? `, ${w.note}` : ''}; longest gap ${g ? ms(g.length) : 'none'}, ` +
        `503 ${inside.filter((s) => s.status === 503).length}, ${latencies(inside)}`,
    );
  }
  // Acks reach every replica a moment after the audit trail says a job ended.
  await sleep(5_000);
  if (theCluster) console.log(`JOBS after the round: ${await jobsReplicas(theCluster)}`);
}

/** Kills (or stops) a node, starts it again after DOWN_MS and waits until it is current. */
async function bounce(
  node: ClusterNode,
  how: 'kill' | 'stop',
  window: (label: string) => (note?: string) => void,
  label: string,
  leaderAfter: () => Promise<ClusterNode>,
) {
  const end = window(label);
  const down = performance.now();
  await (how === 'kill' ? node.kill() : node.stop());
  const next = await leaderAfter();
  const elected = performance.now() - down;
  await sleep(DOWN_MS);
  await node.start();
  end(`leader ${next.name} named ${ms(elected)} after the ${how === 'kill' ? 'SIGKILL' : 'SIGTERM'}`);
}

chaosRound<ClusterNats>({
  title: 'ends every accepted job in exactly one terminal state through leader kills and a rolling restart',
  // Enough load to span every fault (about 100 s at 20 jobs/s).
  jobs: Number(process.env.CHAOS_JOBS ?? 2_000),
  timeoutMs: 1_200_000,
  startNats: async (dataDir) => {
    const cluster = await startNatsCluster({ dataDir: join(dataDir, 'nats-cluster'), name: 'redrive-chaos' });
    theCluster = cluster;
    return {
      cluster,
      url: () => cluster.urls,
      clientUrl: () => cluster.nodes.find((n) => n.running)!.url,
      replicas: 3,
      logFiles: () => cluster.nodes.map((n) => ({ name: n.name, file: n.logFile })),
      stop: () => cluster.stop(),
    };
  },
  natsFaults: async ({ nats: { cluster }, window }) => {
    const jobsLeader = await cluster.streamLeader('JOBS');
    await bounce(jobsLeader, 'kill', window, `SIGKILL JOBS leader ${jobsLeader.name}`, () =>
      cluster.streamLeader('JOBS'),
    );
    await sleep(SETTLE_MS);
    const metaLeader = await cluster.metaLeader();
    await bounce(metaLeader, 'kill', window, `SIGKILL meta leader ${metaLeader.name}`, () => cluster.metaLeader());
    await sleep(SETTLE_MS);
    for (const node of cluster.nodes) {
      const led = (await cluster.streamLeader('JOBS')).name === node.name ? ' (JOBS leader)' : '';
      await bounce(node, 'stop', window, `rolling restart ${node.name}${led}`, () => cluster.streamLeader('JOBS'));
      await sleep(SETTLE_MS);
    }
  },
  report,
});
