import { headers as natsHeaders } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { Topology } from '@redrive/messaging';
import { parseRequest } from '../src/requests.js';

const topology = new Topology({ prefix: 'p' });
const now = new Date('2030-01-01T12:00:00Z');

function request(kind: string, hdrs: Record<string, string>, data = '{"x":1}') {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  return parseRequest(
    { subject: topology.scheduleSubject(kind), headers: h, data: new TextEncoder().encode(data), seq: 7 },
    { topology, now, newId: () => 'generated' },
  );
}

describe('parseRequest', () => {
  it('reads a retry hand-off as the worker publishes it, keeping the job id, attempt and other headers', () => {
    const parsed = request('retry', {
      'Redrive-Job-Id': 'job-1',
      'Redrive-Attempt': '2',
      'Redrive-Max-Attempts': '5',
      'Redrive-Due-At': '2030-01-01T12:05:00Z',
      'Redrive-Original-Subject': 'p.jobs.normal.webhook',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'Nats-Msg-Id': 'retry:job-1:2',
    });
    expect(parsed).toEqual({
      op: 'create',
      schedule: {
        id: 'generated',
        requestId: 'retry:job-1:2',
        kind: 'retry',
        subject: 'p.jobs.normal.webhook',
        jobId: 'job-1',
        attempt: 2,
        payload: new TextEncoder().encode('{"x":1}'),
        headers: [
          ['Redrive-Max-Attempts', '5'],
          ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
        ],
        dueAt: new Date('2030-01-01T12:05:00Z'),
      },
    });
  });

  it('reads a repeat with its schedule id and computes the first fire', () => {
    const parsed = request('repeat', {
      'Redrive-Schedule-Id': 's-1',
      'Redrive-Job-Id': 'j-1',
      'Redrive-Original-Subject': 'p.jobs.high.poll',
      'Redrive-Repeat': '{"cron":"*/15 * * * *","tz":"Europe/Berlin","limit":3}',
    });
    expect(parsed).toMatchObject({
      op: 'create',
      schedule: {
        id: 's-1',
        requestId: 'schedule:s-1',
        kind: 'cron',
        attempt: 0,
        dueAt: new Date('2030-01-01T12:15:00Z'),
        repeat: { cron: '*/15 * * * *', tz: 'Europe/Berlin', limit: 3, missed: 'once' },
      },
    });
  });

  it('reads a cancel', () => {
    expect(request('cancel', { 'Redrive-Schedule-Id': 's-1', 'Redrive-Reason': 'stop_repeat' })).toEqual({
      op: 'cancel',
      id: 's-1',
      reason: 'stop_repeat',
    });
  });

  it.each<[string, Record<string, string>, string]>([
    [
      'delay',
      { 'Redrive-Due-At': '2030-01-01T12:05:00Z' },
      'Redrive-Original-Subject must be the jobs.<priority>.<type> subject',
    ],
    [
      'delay',
      { 'Redrive-Due-At': '2030-01-01T12:05:00Z', 'Redrive-Original-Subject': 'p.dlq.webhook' },
      'must be the jobs',
    ],
    ['delay', { 'Redrive-Original-Subject': 'p.jobs.normal.x' }, 'a delay request needs Redrive-Due-At'],
    ['delay', { 'Redrive-Original-Subject': 'p.jobs.normal.x', 'Redrive-Due-At': 'soon' }, 'is not an RFC 3339 time'],
    [
      'repeat',
      { 'Redrive-Original-Subject': 'p.jobs.normal.x', 'Redrive-Repeat': '{"cron":"nope"}' },
      'Redrive-Repeat.cron "nope"',
    ],
    ['repeat', { 'Redrive-Original-Subject': 'p.jobs.normal.x' }, 'a repeat request needs Redrive-Repeat'],
    ['cancel', {}, 'a cancel request needs Redrive-Schedule-Id'],
    ['later', {}, 'unknown request kind "later"'],
  ])('refuses a %s request: %j', (kind, hdrs, problem) => {
    const parsed = request(kind, hdrs);
    expect(parsed.op).toBe('invalid');
    expect((parsed as { problem: string }).problem).toContain(problem);
  });
});
