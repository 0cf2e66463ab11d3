import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// The alert rules and Prometheus configuration that compose loads, checked with the real tool:
// promtool (Debian's prometheus package, as CI installs it). `promtool test rules` runs the unit
// tests in deploy/prometheus/alerts.test.yml, which must hold, for every alert, a case where it
// fires and one where it does not.

const DIR = join(import.meta.dirname, '..', '..', 'deploy', 'prometheus');
const INSTALL = 'promtool is not installed: apt-get install -y prometheus (Debian; .ci/run installs it)';

function promtool(...args: string[]): { code: number; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(INSTALL);
  if (r.error) throw r.error;
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

interface RuleFile {
  groups: { rules: { alert?: string }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

const alerts = (parse(readFileSync(join(DIR, 'alerts.yml'), 'utf8')) as RuleFile).groups
  .flatMap((g) => g.rules)
  .map((r) => r.alert)
  .filter((a): a is string => a !== undefined);

describe('deploy/prometheus', () => {
  it('promtool check rules accepts alerts.yml', () => {
    const r = promtool('check', 'rules', join(DIR, 'alerts.yml'));
    expect(r.output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(r.code).toBe(0);
  });

  it('promtool check config accepts prometheus.yml with its rule file', () => {
    const r = promtool('check', 'config', join(DIR, 'prometheus.yml'));
    expect(r.output).toContain('SUCCESS: 1 rule files found');
    expect(r.code).toBe(0);
  });

  it('promtool test rules passes every unit test of alerts.test.yml', () => {
    const r = promtool('test', 'rules', join(DIR, 'alerts.test.yml'));
    expect(r.output).toContain('SUCCESS');
    expect(r.output).not.toContain('FAILED');
    expect(r.code).toBe(0);
  });

  it('has, for every alert, a unit test where it fires and one where it does not', () => {
    const tests = parse(readFileSync(join(DIR, 'alerts.test.yml'), 'utf8')) as RuleTests;
    expect(tests.rule_files).toEqual(['alerts.yml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    expect(alerts.length).toBeGreaterThanOrEqual(9);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert}: no case where it fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert}: no case where it stays quiet`,
      ).toBe(true);
    }
  });

  it('covers what an operator must hear about', () => {
    const wanted = [
      /DeadLetter/, // DLQ growth
      /QueueBacklog/, // consumer lag
      /OldestJob/, // the oldest waiting job
      /Saturated/, // worker saturation
      /SchedulerLate/, // scheduler lateness
      /AuditLag/, // audit lag
      /ServiceDown/, // a service down
      /Nats/, // NATS unreachable
      /Postgres/, // Postgres unreachable
    ];
    for (const w of wanted)
      expect(
        alerts.some((a) => w.test(a)),
        String(w),
      ).toBe(true);
  });

  it('fails a rule file with a broken expression and a unit test that expects the wrong alert', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redrive-rules-'));
    writeFileSync(
      join(dir, 'broken.yml'),
      'groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(redrive_worker_jobs_total[5m]) > \n',
    );
    expect(promtool('check', 'rules', join(dir, 'broken.yml')).code).not.toBe(0);

    // alerts.yml with a threshold moved: its unit tests must notice.
    const moved = readFileSync(join(DIR, 'alerts.yml'), 'utf8').replace(
      'max by (type, lane) (redrive_queue_waiting) > 1000',
      'max by (type, lane) (redrive_queue_waiting) > 5000',
    );
    writeFileSync(join(dir, 'alerts.yml'), moved);
    copyFileSync(join(DIR, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
    const r = promtool('test', 'rules', join(dir, 'alerts.test.yml'));
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('alertname: RedriveQueueBacklog');
  });
});
