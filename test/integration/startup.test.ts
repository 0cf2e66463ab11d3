import { describe, expect, it } from 'vitest';
import { startService } from '@redrive/test-support';

describe('start-up with bad configuration', () => {
  it.each(['intake', 'sync-worker'])('%s stops with exit 1 and names every bad variable', async (service) => {
    const proc = startService(service, {
      NATS_URL: 'http://nats:4222',
      SHUTDOWN_GRACE: 'a while',
      STREAM_REPLICAS: '9',
    });
    expect(await proc.exited).toBe(1);
    const err = proc.stderr();
    expect(err).toContain('NATS_URL: expected comma-separated URLs (nats, tls, ws, wss), bad: "http://nats:4222"');
    expect(err).toContain('SHUTDOWN_GRACE: expected a duration');
    expect(err).toContain('STREAM_REPLICAS: expected an integer from 1 to 5, got "9"');
    const line = proc.logs.find((l) => l.msg === 'invalid configuration');
    expect(line?.problems).toHaveLength(3);
  });
});

describe('intake without producer keys', () => {
  it('refuses to start, and says how to fix it', async () => {
    const proc = startService('intake', { INTAKE_API_KEYS: '', INTAKE_ALLOW_ANONYMOUS: '' });
    expect(await proc.exited).toBe(1);
    const err = proc.stderr();
    expect(err).toContain('INTAKE_API_KEYS: is not set, so anyone could submit jobs and read or cancel schedules');
    expect(err).toContain('INTAKE_ALLOW_ANONYMOUS=true');
  });

  it('names a bad key entry without repeating the key', async () => {
    const secret = 'do-not-print-this-key-0001';
    const proc = startService('intake', {
      INTAKE_API_KEYS: JSON.stringify([{ name: 'billing', key: secret, scopes: ['sumbit'] }]),
    });
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toMatch(/INTAKE_API_KEYS: JSON at 0\.scopes\.0: .*submit/);
    const broken = startService('intake', { INTAKE_API_KEYS: `[{"key":"${secret}` });
    expect(await broken.exited).toBe(1);
    expect(broken.stderr()).toContain('INTAKE_API_KEYS: is not valid JSON');
    for (const p of [proc, broken]) expect(p.stderr() + JSON.stringify(p.logs)).not.toContain(secret);
  });
});
