import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

/**
 * Returns a generator of UUIDv7 ids exactly like uuid's `v7()` (time-ordered, and increasing
 * within a millisecond, so ids minted in one process sort in the order they were made), but
 * with the random bits cut from a pool refilled 4 KB at a time. `v7()` asks the system for 16
 * random bytes per id, which costs as much as asking for 4 KB: two ids per job were an eighth
 * of intake's CPU.
 */
export function createUuidV7(now: () => number = Date.now): () => string {
  const pool = new Uint8Array(4096);
  let offset = pool.length;
  let msecs = -Infinity;
  let seq = 0;
  return () => {
    if (offset + 16 > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    const random = pool.subarray(offset, (offset += 16));
    // uuid's own v7 state rule: a new millisecond starts from a random sequence, the same one
    // counts up, and a counter that wraps moves on to the next millisecond.
    const t = now();
    if (t > msecs) {
      seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
      msecs = t;
    } else {
      seq = (seq + 1) | 0;
      if (seq === 0) msecs++;
    }
    return v7({ msecs, seq, random });
  };
}
