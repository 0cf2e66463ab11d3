// Which nats-server Redrive can rely on. The floor is set by a loss, not by features: every
// version below it can acknowledge a publish to JOBS and then not keep the job.

/**
 * The oldest nats-server that keeps every job it acknowledged through a restart. Before
 * 2.9.16 a stream that is shutting down drops its consumers first and keeps taking
 * publishes: an interest-retention stream (JOBS) then sees a publish with no consumer, skips
 * it and still answers with a sequence, so the job is acknowledged and never stored (fixed
 * upstream by nats-io/nats-server commit 5cabc365, "General improvements around handling
 * interest retention", which marks the stream closed before its consumers go). Redrive's
 * chaos round lost one accepted job exactly at a NATS restart on 2.9.10, twice.
 */
export const MIN_NATS_SERVER = '2.9.16';

/** The release every suite and the benchmark run on (docs/reliability.md). */
export const TESTED_NATS_SERVER = '2.10.27';

/** Compares dotted versions numerically ("2.10.0" > "2.9.16"); a suffix such as -RC.1 is ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .replace(/^v/, '')
      .split(/[-+]/)[0]!
      .split('.')
      .map((n) => Number(n) || 0);
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Why a server of this version cannot be relied on, or undefined when it can. */
export function unsupportedServerReason(version: string | undefined): string | undefined {
  if (!version) return undefined;
  if (compareVersions(version, MIN_NATS_SERVER) >= 0) return undefined;
  return (
    `nats-server ${version} is older than ${MIN_NATS_SERVER}: while it shuts down it can acknowledge a job ` +
    `published to JOBS and not keep it (an accepted job lost at a NATS restart); upgrade nats-server ` +
    `(Redrive is tested on ${TESTED_NATS_SERVER})`
  );
}
