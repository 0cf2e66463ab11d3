import { describe, expect, it } from 'vitest';
import { validate, version } from 'uuid';
import { createUuidV7 } from '@redrive/messaging';

describe('createUuidV7', () => {
  it('makes valid, unique version-7 ids', () => {
    const next = createUuidV7();
    // More than one 4 KB pool's worth (256 ids), so a refill is crossed.
    const ids = Array.from({ length: 1_000 }, next);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 300)) {
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
    }
  });

  it('keeps ids of one millisecond in the order they were made', () => {
    const next = createUuidV7(() => 1_700_000_000_000);
    const ids = Array.from({ length: 500 }, next);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0]!.slice(0, 13)).toBe('018bcfe5-6800');
  });

  it('orders ids by time across milliseconds', () => {
    let t = 1_700_000_000_000;
    const next = createUuidV7(() => (t += 1));
    const ids = Array.from({ length: 100 }, next);
    expect([...ids].sort()).toEqual(ids);
  });
});
