import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closePool, createPool, migrate, type Pool } from '@redrive/store';
import { createTestDatabase, type TestDatabase } from '@redrive/test-support';
import { appendAudit, readSummary, readTimeline, type AuditRow } from '../src/audit/store.js';
import { readActivity } from '../src/queues/activity.js';

// The audit projection's one statement against a real Postgres: idempotent by event id, and
// a summary that is right whatever order (and however often) events arrive in.

const logger = pino({ level: 'silent' });
let db: TestDatabase;
let pool: Pool;
let n = 0;

const row = (jobId: string, kind: string, at: string, extra: Partial<AuditRow> = {}): AuditRow => ({
  id: `e${++n}`,
  jobId,
  type: 'sync',
  kind,
  attempt: 1,
  errorClass: null,
  error: null,
  delayMs: null,
  durationMs: null,
  traceId: null,
  actor: null,
  at: new Date(at),
  extra: null,
  ...extra,
});

beforeAll(async () => {
  db = await createTestDatabase('dlq_audit');
  await migrate({ url: db.url, logger });
  pool = createPool({ url: db.url, logger });
});

afterAll(async () => {
  await closePool(pool);
  await db.drop();
});

describe('appendAudit', () => {
  it('stores each event once, however often it is replayed, also twice within one batch', async () => {
    const events = [
      row('j1', 'attempt.failed', '2030-01-01T00:00:01Z'),
      row('j1', 'attempt.succeeded', '2030-01-01T00:00:02Z'),
    ];
    expect(await appendAudit(pool, events)).toBe(2);
    expect(await appendAudit(pool, events)).toBe(0);
    expect(await appendAudit(pool, [events[0]!, events[0]!])).toBe(0);
    expect(await readTimeline(pool, 'j1')).toHaveLength(2);
    // A replay is not counted twice in the summary either.
    expect(await readSummary(pool, 'j1')).toMatchObject({ status: 'succeeded', attempts: 2, lives: 1 });
  });

  it('keeps the status of the latest event when events arrive out of order, in separate batches', async () => {
    const failed = row('j2', 'attempt.failed', '2030-01-01T00:00:01Z', { errorClass: 'client', error: '400' });
    const dead = row('j2', 'job.dead_lettered', '2030-01-01T00:00:02Z');
    const log = row('j2', 'job.log', '2030-01-01T00:00:03Z');
    await appendAudit(pool, [log]);
    expect(await readSummary(pool, 'j2')).toMatchObject({ status: 'running', attempts: 0 });
    await appendAudit(pool, [dead]);
    await appendAudit(pool, [failed]);
    expect(await readSummary(pool, 'j2')).toMatchObject({
      status: 'dead_lettered',
      attempts: 1,
      lastErrorClass: 'client',
      lastError: '400',
      firstSeenAt: '2030-01-01T00:00:01.000Z',
      lastSeenAt: '2030-01-01T00:00:03.000Z',
    });
    await appendAudit(pool, [row('j2', 'job.redriven', '2030-01-01T00:01:00Z', { actor: 'ops' })]);
    await appendAudit(pool, [row('j2', 'attempt.succeeded', '2030-01-01T00:01:01Z')]);
    expect(await readSummary(pool, 'j2')).toMatchObject({ status: 'succeeded', attempts: 2, lives: 2 });
    expect((await readTimeline(pool, 'j2')).map((e) => [e.kind, e.life])).toEqual([
      ['attempt.failed', 1],
      ['job.dead_lettered', 1],
      ['job.log', 1],
      ['job.redriven', 2],
      ['attempt.succeeded', 2],
    ]);
  });

  it('never lets an earlier stage overwrite a terminal state, whatever the timestamps say', async () => {
    // Intake stamps job.accepted after its PubAck, which can be after the worker finished.
    await appendAudit(pool, [row('j3', 'attempt.succeeded', '2030-01-01T00:00:01Z')]);
    await appendAudit(pool, [row('j3', 'job.accepted', '2030-01-01T00:00:02Z', { attempt: 0 })]);
    expect(await readSummary(pool, 'j3')).toMatchObject({ status: 'succeeded' });
    // In one batch too, and for every terminal state.
    await appendAudit(pool, [
      row('j4', 'job.cancelled', '2030-01-01T00:00:01Z'),
      row('j4', 'job.accepted', '2030-01-01T00:00:02Z'),
      row('j5', 'job.dead_lettered', '2030-01-01T00:00:01Z'),
      row('j5', 'retry.scheduled', '2030-01-01T00:00:02Z'),
    ]);
    expect(await readSummary(pool, 'j4')).toMatchObject({ status: 'cancelled' });
    expect(await readSummary(pool, 'j5')).toMatchObject({ status: 'dead_lettered' });
  });

  it('orders lives by Redrive-Life: a redrive begins one, and its events outrank the earlier life', async () => {
    await appendAudit(pool, [row('j6', 'job.dead_lettered', '2030-01-01T00:00:05Z')]);
    // The redrive's row is stamped before the old life's dead letter (clocks differ).
    await appendAudit(pool, [row('j6', 'job.redriven', '2030-01-01T00:00:04Z', { extra: { life: '7.1' } })]);
    expect(await readSummary(pool, 'j6')).toMatchObject({ status: 'redriven', lives: 2 });
    await appendAudit(pool, [row('j6', 'attempt.failed', '2030-01-01T00:00:06Z', { extra: { life: '7.1' } })]);
    await appendAudit(pool, [row('j6', 'job.dead_lettered', '2030-01-01T00:00:07Z', { extra: { life: '7.1' } })]);
    // A second redrive of a later dead letter, and the success of that life arriving first.
    await appendAudit(pool, [row('j6', 'attempt.succeeded', '2030-01-01T00:00:09Z', { extra: { life: '9.1' } })]);
    await appendAudit(pool, [row('j6', 'job.redriven', '2030-01-01T00:00:08Z', { extra: { life: '9.1' } })]);
    expect(await readSummary(pool, 'j6')).toMatchObject({ status: 'succeeded', lives: 3 });
  });

  it('is append-only: stored events cannot be changed or removed', async () => {
    await expect(pool.query(`UPDATE audit_events SET kind = 'x' WHERE job_id = 'j1'`)).rejects.toThrow(/append-only/);
    await expect(pool.query(`DELETE FROM audit_events WHERE job_id = 'j1'`)).rejects.toThrow(/append-only/);
  });
});

describe('the rolling counts of the queue stats (audit_activity)', () => {
  it('counts each success, failure and dead letter once per type, replays and other kinds left out', async () => {
    const now = new Date();
    const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000).toISOString();
    const t = (kind: string, secondsAgo: number) =>
      row(`act-${n}`, kind, at(secondsAgo), { type: 'counted', id: `act-${++n}` });
    const events = [
      t('attempt.succeeded', 5),
      t('attempt.succeeded', 20),
      t('attempt.failed', 20),
      t('job.dead_lettered', 20),
      t('attempt.started', 20),
      t('job.log', 20),
      // Before the last minute, inside the hour; and before the hour.
      t('attempt.succeeded', 600),
      t('attempt.succeeded', 4_000),
    ];
    await appendAudit(pool, events);
    await appendAudit(pool, events);
    await appendAudit(pool, [events[0]!]);
    const counted = (await readActivity(pool, now)).find((a) => a.type === 'counted');
    expect(counted).toEqual({
      type: 'counted',
      lastMinute: { succeeded: 2, failed: 1, deadLettered: 1 },
      lastHour: { succeeded: 3, failed: 1, deadLettered: 1 },
    });
    // A queue's pause has a timeline and neither a count nor a job summary.
    await appendAudit(pool, [
      row('queue:counted', 'queue.paused', at(1), { type: 'counted', actor: 'ops', id: `act-${++n}` }),
    ]);
    expect(await readSummary(pool, 'queue:counted')).toBeUndefined();
    expect((await readTimeline(pool, 'queue:counted')).map((e) => [e.kind, e.actor])).toEqual([
      ['queue.paused', 'ops'],
    ]);
    expect((await readActivity(pool, now)).find((a) => a.type === 'counted')).toEqual(counted);
  });
});
