import { describe, expect, it } from 'vitest';
import { compareVersions, MIN_NATS_SERVER, unsupportedServerReason } from '../src/server-version.js';

describe('nats-server version floor', () => {
  it('compares versions by number, not as text', () => {
    expect(compareVersions('2.10.0', '2.9.16')).toBe(1);
    expect(compareVersions('2.9.10', '2.9.16')).toBe(-1);
    expect(compareVersions('v2.9.16', '2.9.16')).toBe(0);
    expect(compareVersions('2.11.0-RC.1', '2.11')).toBe(0);
  });

  it('names the loss for a server below the floor and nothing for one at or above it', () => {
    expect(unsupportedServerReason('2.9.10')).toMatch(/older than 2\.9\.16.*acknowledge a job/);
    expect(unsupportedServerReason(MIN_NATS_SERVER)).toBeUndefined();
    expect(unsupportedServerReason('2.10.27')).toBeUndefined();
    // A server that did not say its version (a proxy, say) is not accused.
    expect(unsupportedServerReason(undefined)).toBeUndefined();
  });
});
