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
