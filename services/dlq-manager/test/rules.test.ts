import { describe, expect, it } from 'vitest';
import { eventToRow, parseEventMessage, statusOf, toTimeline } from '../src/audit/store.js';
import { createTokenAuth } from '../src/operations/auth.js';
import { loadDlqConfig } from '../src/config.js';
import { OperationError } from '../src/dead-letters/errors.js';
import { dueAtOf } from '../src/dead-letters/redrive.js';
import { filterSql } from '../src/dead-letters/store.js';
import { decodeCursor, encodeCursor, payloadFields } from '../src/dead-letters/views.js';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const fallback = { id: 'EVENTS:9', kind: 'job.log', at: new Date('2030-01-01T00:00:00Z') };

describe('job status from events', () => {
  it.each([
    ['job.accepted', 'accepted'],
    ['attempt.started', 'running'],
    ['attempt.succeeded', 'succeeded'],
    ['job.skipped', 'succeeded'],
    ['attempt.failed', 'retrying'],
    ['retry.scheduled', 'scheduled'],
    ['job.dead_lettered', 'dead_lettered'],
    ['job.redriven', 'redriven'],
    ['job.log', null],
    ['job.progress', null],
    ['dead_letter.resolved', null],
    ['dead_letter.deleted', null],
  ])('%s leaves the job %s', (kind, status) => {
    expect(statusOf(kind)).toBe(status);
  });
});

describe('events to audit rows', () => {
  it('maps the known fields and keeps the rest in extra', () => {
    const r = eventToRow(
      {
        id: 'e1',
        kind: 'attempt.failed',
        jobId: 'j1',
        type: 'sync',
        at: '2030-01-02T03:04:05.000Z',
        attempt: 2,
        traceId: 't',
        errorClass: 'network',
        error: 'ECONNRESET',
        delayMs: 2000.4,
        durationMs: 12,
        reason: 'x',
        data: { k: 1 },
      },
      fallback,
    );
    expect(r).toEqual({
      ok: true,
      row: {
        id: 'e1',
        jobId: 'j1',
        type: 'sync',
        kind: 'attempt.failed',
        attempt: 2,
        errorClass: 'network',
        error: 'ECONNRESET',
        delayMs: 2000,
        durationMs: 12,
        traceId: 't',
        actor: null,
        at: new Date('2030-01-02T03:04:05.000Z'),
        extra: { reason: 'x', data: { k: 1 } },
      },
    });
  });

  it('moves fields of the wrong type to extra instead of losing them, and falls back for id, kind and time', () => {
    const r = eventToRow({ jobId: 'j', attempt: -1, delayMs: 'soon', at: 'yesterday' }, fallback);
    expect(r.ok && r.row).toMatchObject({
      id: 'EVENTS:9',
      kind: 'job.log',
      attempt: null,
      delayMs: null,
      at: fallback.at,
      extra: { attempt: -1, delayMs: 'soon', at: 'yesterday' },
    });
  });

  it('refuses an event without a job id', () => {
    expect(eventToRow({ id: 'x', kind: 'job.log' }, fallback)).toEqual({ ok: false, problem: 'no jobId' });
  });

  it('reads a batched message, numbering elements without an id after the message', () => {
    const parsed = parseEventMessage(enc([{ id: 'a', jobId: 'j1' }, { jobId: 'j2' }, { nope: true }]), fallback);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.rows.map((r) => r.id)).toEqual(['a', 'EVENTS:9:1']);
    expect(parsed.problems).toEqual(['[2] no jobId']);
  });

  it('refuses a message that is not JSON, or holds no storable event', () => {
    expect(parseEventMessage(new TextEncoder().encode('{'), fallback).ok).toBe(false);
    expect(parseEventMessage(enc([]), fallback).ok).toBe(false);
    expect(parseEventMessage(enc(42), fallback).ok).toBe(false);
  });

  it('numbers the lives of a job in its timeline: a redrive starts the next', () => {
    const row = (kind: string) => ({
      id: kind,
      kind,
      at: new Date(0),
      attempt: null,
      error_class: null,
      error: null,
      delay_ms: null,
      duration_ms: null,
      trace_id: null,
      actor: null,
      extra: null,
    });
    const t = toTimeline(['attempt.failed', 'job.dead_lettered', 'job.redriven', 'attempt.succeeded'].map(row));
    expect(t.map((e) => e.life)).toEqual([1, 1, 2, 2]);
  });
});

describe('dead letter filters', () => {
  it('builds no clause for no filter', () => {
    expect(filterSql({})).toEqual({ where: '', params: [] });
  });

  it('combines every field with AND, numbering parameters from the given one', () => {
    const f = filterSql(
      {
        type: 'sync',
        reason: 'max_deliveries',
        errorClass: 'network',
        resolved: false,
        from: '2030-01-01T00:00:00.000Z',
        to: '2030-02-01T00:00:00.000Z',
        q: 'timeout',
        jobId: 'j',
      },
      3,
    );
    expect(f.where).toBe(
      'WHERE type = $3 AND reason = $4 AND error_class = $5 AND resolved_at IS NULL AND created_at >= $6 ' +
        'AND created_at < $7 AND job_id = $8 AND error ILIKE $9',
    );
    expect(f.params).toEqual([
      'sync',
      'max_deliveries',
      'network',
      '2030-01-01T00:00:00.000Z',
      '2030-02-01T00:00:00.000Z',
      'j',
      '%timeout%',
    ]);
  });

  it('matches the searched text literally', () => {
    expect(filterSql({ q: '100%_done\\' }).params).toEqual(['%100\\%\\_done\\\\%']);
  });
});

describe('requests', () => {
  it('round-trips cursors and refuses foreign ones', () => {
    expect(decodeCursor(encodeCursor(12345))).toBe(12345);
    expect(() => decodeCursor('bm9wZQ')).toThrow(OperationError);
  });

  it.each([
    [{}, undefined],
    [{ delay: '90s' }, new Date('2030-01-01T00:01:30.000Z')],
    [{ delay: '0s' }, undefined],
    [{ at: '2030-01-01T01:00:00+01:00' }, undefined],
    [{ at: '2030-01-01T02:00:00+01:00' }, new Date('2030-01-01T01:00:00.000Z')],
  ])('schedules a redrive with %j for %s', (req, expected) => {
    expect(dueAtOf(req, new Date('2030-01-01T00:00:00Z'))).toEqual(expected);
  });

  it.each([[{ delay: 'soon' }], [{ at: 'tomorrow' }], [{ delay: '1m', at: '2030-01-01T00:00:00Z' }]])(
    'refuses %j',
    (req) => {
      expect(() => dueAtOf(req, new Date())).toThrow(OperationError);
    },
  );

  it('shows a JSON payload as JSON and anything else as base64', () => {
    expect(payloadFields(enc({ a: [1] }))).toEqual({ payload: { a: [1] } });
    expect(payloadFields(new Uint8Array([0xff, 0x00]))).toEqual({ payloadBase64: '/wA=' });
    expect(payloadFields(null)).toEqual({});
  });
});

describe('bearer tokens', () => {
  const auth = createTokenAuth([
    { name: 'ada', role: 'operator', token: 'operator-secret-0001' },
    { name: 'bob', role: 'viewer', token: 'viewer-secret-00002' },
  ]);

  it('names the principal of a known token', () => {
    expect(auth.authenticate('Bearer operator-secret-0001')).toEqual({ name: 'ada', role: 'operator' });
    expect(auth.authenticate('bearer   viewer-secret-00002 ')).toEqual({ name: 'bob', role: 'viewer' });
  });

  it.each([[undefined], ['Basic YTpi'], ['Bearer'], ['Bearer operator-secret-0002']])('answers 401 to %s', (h) => {
    expect(() => auth.authenticate(h)).toThrow(expect.objectContaining({ statusCode: 401 }));
  });

  it('lets a viewer read and an operator change; a viewer gets 403 for a change', () => {
    const bob = auth.authenticate('Bearer viewer-secret-00002');
    const ada = auth.authenticate('Bearer operator-secret-0001');
    expect(() => auth.authorize(bob, 'viewer')).not.toThrow();
    expect(() => auth.authorize(ada, 'operator')).not.toThrow();
    expect(() => auth.authorize(bob, 'operator')).toThrow(expect.objectContaining({ statusCode: 403 }));
  });

  it('refuses everything when no token is configured', () => {
    expect(() => createTokenAuth([]).authenticate('Bearer anything-at-all-000')).toThrow(
      expect.objectContaining({ statusCode: 401 }),
    );
  });
});

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadDlqConfig({});
    expect(c).toMatchObject({
      http: { host: '0.0.0.0', port: 8081 },
      tokens: [],
      migrate: true,
      retentionMs: 30 * 86_400_000,
      cleanupIntervalMs: 3_600_000,
      audit: { batch: 500 },
      ackWaitMs: 30_000,
      fault: '',
    });
  });

  it.each([
    ['DLQ_TOKENS', '[{"name":"a","role":"admin","token":"0123456789abcdef"}]', /DLQ_TOKENS/],
    ['DLQ_TOKENS', '[{"name":"a","role":"viewer","token":"short"}]', /at least 16/],
    [
      'DLQ_TOKENS',
      '[{"name":"a","role":"viewer","token":"0123456789abcdef"},{"name":"a","role":"operator","token":"fedcba9876543210"}]',
      /used twice/,
    ],
    ['DLQ_RETENTION', 'forever', /DLQ_RETENTION/],
    ['DLQ_FAULT', 'explode', /DLQ_FAULT/],
  ])('refuses a bad %s (%s)', (variable, value, message) => {
    expect(() => loadDlqConfig({ [variable]: value })).toThrow(message);
  });
});
