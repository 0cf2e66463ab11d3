import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  eventEmitters,
  EVENT_KINDS,
  NATS_ROLES,
  natsInboxPrefix,
  natsPasswordVariable,
  natsPermissions,
  natsUserName,
  renderNatsAuthConfig,
  SERVICE_ROLES,
  subjectMatches,
  Topology,
  type NatsRole,
} from '@redrive/messaging';
import { deployArtifacts } from '../../../scripts/nats-config.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/** Whether `role` may publish `subject` as nats-server decides it: an allow matches and no deny does. */
function mayPublish(topology: Topology, role: NatsRole, subject: string): boolean {
  const p = natsPermissions(topology, role).publish;
  return p.allow.some((a) => subjectMatches(a, subject)) && !p.deny.some((d) => subjectMatches(d, subject));
}

const mayPublishAs = (topology: Topology, subject: string) =>
  NATS_ROLES.filter((role) => mayPublish(topology, role, subject));

describe.each(['', 'acme'])('the permission matrix (prefix "%s")', (prefix) => {
  const t = new Topology({ prefix });
  const s = t.streams;

  it('lets no user publish an advisory or a system subject', () => {
    for (const subject of [
      `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${s.jobs}.worker-normal-x`,
      `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${s.jobs}.worker-normal-x`,
      '$SYS.REQ.SERVER.PING',
    ])
      expect(mayPublishAs(t, subject), subject).toEqual([]);
  });

  it('lets only dlq-manager delete from JOBS, nobody purge or drop it, only the worker change it', () => {
    expect(mayPublishAs(t, `$JS.API.STREAM.MSG.DELETE.${s.jobs}`)).toEqual(['dlq-manager']);
    expect(mayPublishAs(t, `$JS.API.STREAM.PURGE.${s.jobs}`)).toEqual([]);
    expect(mayPublishAs(t, `$JS.API.STREAM.DELETE.${s.jobs}`)).toEqual([]);
    expect(mayPublishAs(t, `$JS.API.STREAM.UPDATE.${s.jobs}`)).toEqual(['sync-worker']);
  });

  it('lets each lifecycle event come from the one service that emits it', () => {
    for (const [kind, emitters] of eventEmitters()) {
      expect(emitters, kind).toHaveLength(1);
      expect(mayPublishAs(t, t.eventSubject(kind)), kind).toEqual(emitters);
    }
    expect(mayPublishAs(t, t.eventSubject('made.up'))).toEqual([]);
    expect(EVENT_KINDS.length).toBeGreaterThan(0);
  });

  it("answers dlq-manager's change endpoints to the operator only, its reads to viewers too", () => {
    expect(mayPublishAs(t, `${t.dlqManagerApiRoot}.delete`)).toEqual(['operator']);
    expect(mayPublishAs(t, `${t.dlqManagerApiRoot}.redrive`)).toEqual(['operator']);
    expect(mayPublishAs(t, `${t.dlqManagerApiRoot}.list`)).toEqual(['operator', 'viewer']);
  });

  it('gives intake jobs and schedule requests to publish and nothing to read but its own replies', () => {
    const intake = natsPermissions(t, 'intake');
    expect(intake.subscribe.allow).toEqual([`${natsInboxPrefix(prefix, 'intake')}.>`]);
    expect(mayPublish(t, 'intake', t.jobSubject('normal', 'x'))).toBe(true);
    expect(mayPublish(t, 'intake', t.scheduleSubject('delay'))).toBe(true);
    expect(mayPublish(t, 'intake', t.scheduleSubject('retry'))).toBe(false);
    expect(mayPublish(t, 'intake', t.dlqSubject('x'))).toBe(false);
  });

  it('gives every role an inbox of its own, covered by no other role', () => {
    for (const role of NATS_ROLES) {
      const inbox = `${natsInboxPrefix(prefix, role)}.x.y`;
      const readers = NATS_ROLES.filter((r) =>
        natsPermissions(t, r).subscribe.allow.some((a) => subjectMatches(a, inbox)),
      );
      expect(readers, role).toEqual([role]);
    }
  });

  it('keeps an installation to its own subjects and streams', () => {
    const other = new Topology({ prefix: 'other' });
    for (const role of NATS_ROLES)
      for (const subject of [
        other.jobSubject('normal', 'x'),
        other.eventSubject('job.accepted'),
        `$JS.API.STREAM.MSG.DELETE.${other.streams.jobs}`,
        `${other.dlqManagerApiRoot}.list`,
      ])
        expect(mayPublish(t, role, subject), `${role} ${subject}`).toBe(false);
  });
});

describe('the rendered nats-server configuration', () => {
  it('is what deploy/ holds (run `pnpm nats:config` after changing the permissions)', () => {
    for (const [path, text] of Object.entries(deployArtifacts()))
      expect(readFileSync(join(REPO_ROOT, path), 'utf8'), path).toBe(text);
  });

  it('names users and password variables per installation', () => {
    expect(natsUserName('', 'intake')).toBe('redrive-intake');
    expect(natsUserName('t1', 'dlq-manager')).toBe('redrive-t1-dlq-manager');
    expect(natsPasswordVariable('', 'sync-worker')).toBe('REDRIVE_NATS_PASSWORD_SYNC_WORKER');
    expect(natsPasswordVariable('a-b', 'operator')).toBe('REDRIVE_NATS_PASSWORD_A_B_OPERATOR');
    expect(() => renderNatsAuthConfig({ prefixes: ['', ''] })).toThrow(/two users would be named/);
    expect(() => renderNatsAuthConfig({ prefixes: [''], credential: () => ({ password: '123' }) })).toThrow(
      /password must match/,
    );
  });

  it('is a configuration nats-server accepts, and refuses without the passwords it refers to', () => {
    const file = join(REPO_ROOT, 'deploy/nats/redrive-auth.conf');
    const env = Object.fromEntries(
      NATS_ROLES.map((r) => [natsPasswordVariable('', r), `x${r.replace(/-/g, '')}0123456789abcdefghij`]),
    );
    const ok = spawnSync('nats-server', ['-t', '-c', file], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const missing = spawnSync('nats-server', ['-t', '-c', file], {
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    });
    expect(missing.status).not.toBe(0);
    expect(missing.stdout + missing.stderr).toMatch(/REDRIVE_NATS_PASSWORD_INTAKE/);
    expect(SERVICE_ROLES.every((r) => readFileSync(file, 'utf8').includes(`"${natsUserName('', r)}"`))).toBe(true);
  });
});
