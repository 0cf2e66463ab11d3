import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// docker-compose.yml as both compose implementations read it: `docker compose` (v2) and Debian's
// docker-compose 1.29, which refuses a top-level `name:` (checked by hand with
// `docker-compose -f docker-compose.yml config`, see deploy/README.md). It runs the NATS release
// Redrive is tested with, pinned, and loads the alert rules and the Grafana dashboards.

const ROOT = join(import.meta.dirname, '..', '..');
interface Service {
  image?: string;
  command?: string[];
  volumes?: string[];
}
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
  [key: string]: unknown;
};

/** The host side of each bind mount of a service (`./path:/in/container[:ro]`). */
const binds = (service: string) =>
  (compose.services[service]!.volumes ?? [])
    .filter((v) => v.startsWith('./'))
    .map((v) => {
      const [host, container] = v.split(':');
      return { host: host!, container: container! };
    });

describe('docker-compose.yml', () => {
  it('has only the top-level keys docker-compose 1.29 accepts (no name:)', () => {
    const allowed = new Set(['version', 'services', 'volumes', 'networks', 'configs', 'secrets']);
    expect(Object.keys(compose).filter((k) => !allowed.has(k) && !k.startsWith('x-'))).toEqual([]);
  });

  it('runs a pinned nats-server 2.10 release, the one Redrive is tested with', () => {
    expect(compose.services.nats!.image).toMatch(/^nats:2\.10\.\d+-alpine$/);
  });

  it('mounts only files and directories that exist', () => {
    for (const name of Object.keys(compose.services)) {
      for (const b of binds(name)) expect(existsSync(join(ROOT, b.host)), `${name}: ${b.host}`).toBe(true);
    }
  });

  it('gives Prometheus its configuration and the alert rules it loads', () => {
    const mount = binds('prometheus').find((b) => b.container === '/etc/prometheus');
    expect(mount?.host).toBe('./deploy/prometheus');
    expect(compose.services.prometheus!.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const config = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string }[];
    };
    for (const f of config.rule_files) expect(existsSync(join(ROOT, 'deploy/prometheus', f)), f).toBe(true);
    expect(config.scrape_configs.map((s) => s.job_name).sort()).toEqual(
      ['dlq-manager', 'intake', 'retry-scheduler', 'sync-worker'].sort(),
    );
  });

  it('gives Grafana the dashboard provider and the directory it reads', () => {
    const mounts = binds('grafana');
    expect(mounts).toContainEqual({ host: './deploy/grafana/provisioning', container: '/etc/grafana/provisioning' });
    const provider = parse(
      readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/dashboards.yml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    const path = provider.providers[0]!.options.path;
    expect(mounts).toContainEqual({ host: './deploy/grafana/dashboards', container: path });
    expect(existsSync(join(ROOT, 'deploy/grafana/dashboards/redrive-overview.json'))).toBe(true);
  });
});
