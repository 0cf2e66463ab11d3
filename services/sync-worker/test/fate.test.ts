import { describe, expect, it } from 'vitest';
import { createRetryPolicy, type Classification } from '@redrive/retry-policy';
import {
  fateBeforeRun,
  fateOfFailure,
  fateOfLimit,
  fateOfNotBefore,
  waitFate,
  type BeforeRun,
  type Fate,
} from '../src/fate.js';

// What happens to a delivery, as tables: the one wait rule, each step before a run, and a
// failed attempt under the default policy.

const NOW = Date.parse('2030-01-01T00:00:00Z');
const rules = { localDelayMaxMs: 10_000, handoffThresholdMs: 30_000, maxCrashes: 3 };
const at = (ms: number) => new Date(NOW + ms);

describe('waitFate: wait here, NAK with a delay, or leave for the scheduler', () => {
  it.each<[string, number, 'nak' | 'rerun', Fate]>([
    ['no wait: held for 0 ms', 0, 'nak', { kind: 'hold', ms: 0, then: 'nak' }],
    ['a negative wait counts as none', -5, 'rerun', { kind: 'hold', ms: 0, then: 'rerun' }],
    ['short: timed here', 10_000, 'nak', { kind: 'hold', ms: 10_000, then: 'nak' }],
    ['middling: a NAK delay', 10_001, 'nak', { kind: 'nak', delayMs: 10_001 }],
    ['at the threshold: still a NAK delay', 30_000, 'nak', { kind: 'nak', delayMs: 30_000 }],
    // A NAK would be counted as a delivery, using up an attempt of a job that has not run.
    ['middling, for a job that has not run: held here', 20_000, 'rerun', { kind: 'hold', ms: 20_000, then: 'rerun' }],
    [
      'over the threshold: the scheduler',
      30_001,
      'nak',
      { kind: 'handoff', delayMs: 30_001, dueAt: at(30_001), attemptsMade: 2 },
    ],
  ])('%s', (_name, ms, then, expected) => {
    expect(waitFate(ms, then, 2, NOW, rules)).toEqual(expected);
  });

  it('hands off a wait over a threshold that is below the local maximum (compressed time)', () => {
    expect(waitFate(500, 'nak', 1, NOW, { localDelayMaxMs: 10_000, handoffThresholdMs: 100 })).toMatchObject({
      kind: 'handoff',
    });
  });
});

describe('before a run', () => {
  it.each<[string, Date | undefined, Fate]>([
    ['no Not-Before: run', undefined, { kind: 'run' }],
    ['due already: run', at(-1), { kind: 'run' }],
    [
      'due in 2 s: held here, then run again without using an attempt',
      at(2_000),
      { kind: 'hold', ms: 2_000, then: 'rerun' },
    ],
    [
      'due in 20 s: held here too (a NAK would count as an attempt)',
      at(20_000),
      { kind: 'hold', ms: 20_000, then: 'rerun' },
    ],
    [
      'due in an hour: with the scheduler, the attempts made unchanged',
      at(3_600_000),
      { kind: 'handoff', delayMs: 3_600_000, dueAt: at(3_600_000), attemptsMade: 0 },
    ],
  ])('Not-Before %s', (_name, notBefore, expected) => {
    expect(fateOfNotBefore(notBefore, 1, NOW, rules)).toEqual(expected);
  });

  it.each<[string, { completed: boolean; crashed: number; suspectDeaths: number }, BeforeRun]>([
    ['a fresh job runs', { completed: false, crashed: 0, suspectDeaths: 0 }, { kind: 'run' }],
    [
      'one completed before (a lost ack) is skipped',
      { completed: true, crashed: 5, suspectDeaths: 2 },
      { kind: 'skip', reason: 'already_completed' },
    ],
    [
      'after a death it is a suspect, run apart from the other suspects',
      { completed: false, crashed: 1, suspectDeaths: 0 },
      { kind: 'isolate' },
    ],
    [
      'deaths beside a poison job (or unseen while Redis was away) never convict it',
      { completed: false, crashed: 7, suspectDeaths: 0 },
      { kind: 'isolate' },
    ],
    [
      'one death as an isolated suspect is not yet enough',
      { completed: false, crashed: 2, suspectDeaths: 1 },
      { kind: 'isolate' },
    ],
    [
      'dead-lettered as a crash after maxCrashes deaths, all but the first isolated',
      { completed: false, crashed: 3, suspectDeaths: 2 },
      { kind: 'deadLetter', reason: 'retries_exhausted', errorClass: 'crash' },
    ],
  ])('%s', (_name, facts, expected) => {
    expect(fateBeforeRun(facts, rules)).toEqual(expected);
  });

  it('with maxCrashes 1, the first death dead-letters the job', () => {
    expect(fateBeforeRun({ completed: false, crashed: 1, suspectDeaths: 0 }, { maxCrashes: 1 })).toMatchObject({
      kind: 'deadLetter',
    });
  });

  it('holds a job a limit holds back without using an attempt', () => {
    expect(fateOfLimit(250, 3, NOW, rules)).toEqual({ kind: 'hold', ms: 250, then: 'rerun' });
    expect(fateOfLimit(60_000, 3, NOW, rules)).toMatchObject({ kind: 'handoff', attemptsMade: 2 });
  });
});

describe('after a failed attempt (default policy, no jitter)', () => {
  const policy = createRetryPolicy({
    network: { jitter: 0 },
    server: { jitter: 0 },
    rate_limit: { jitter: 0 },
  });
  const failed = (classification: Classification, attempt: number, maxAttempts?: number) =>
    fateOfFailure(policy, { type: 't', classification, attempt, maxAttempts, now: NOW }, rules);

  it.each<[string, Classification, number, number | undefined, Partial<Fate> & { errorClass: string }]>([
    [
      'network, first failure: 2 s, timed here',
      { errorClass: 'network', message: 'x' },
      1,
      undefined,
      { kind: 'hold', ms: 2_000, then: 'nak', errorClass: 'network' },
    ],
    [
      'network, fourth: 16 s, a NAK delay',
      { errorClass: 'network', message: 'x' },
      4,
      undefined,
      { kind: 'nak', delayMs: 16_000, errorClass: 'network' },
    ],
    [
      'server, fourth: 40 s, handed off',
      { errorClass: 'server', message: 'x' },
      4,
      undefined,
      { kind: 'handoff', delayMs: 40_000, attemptsMade: 4, errorClass: 'server' },
    ],
    [
      'server, sixth: retries exhausted',
      { errorClass: 'server', message: 'x' },
      6,
      undefined,
      { kind: 'deadLetter', reason: 'retries_exhausted', errorClass: 'server' },
    ],
    [
      'maxAttempts 2 ends at the second',
      { errorClass: 'network', message: 'x' },
      2,
      2,
      { kind: 'deadLetter', reason: 'retries_exhausted', errorClass: 'network' },
    ],
    [
      'client: never retried',
      { errorClass: 'client', message: 'x' },
      1,
      undefined,
      { kind: 'deadLetter', reason: 'non_retryable', errorClass: 'client' },
    ],
    [
      'an explicit delay of 45 s is handed off',
      { errorClass: 'unknown', message: 'x', delayMs: 45_000 },
      1,
      undefined,
      { kind: 'handoff', delayMs: 45_000, errorClass: 'unknown' },
    ],
    [
      'a Retry-After of 60 s on a rate limit is handed off',
      { errorClass: 'rate_limit', message: 'x', delayMs: 60_000 },
      1,
      undefined,
      { kind: 'handoff', delayMs: 60_000, errorClass: 'rate_limit' },
    ],
  ])('%s', (_name, classification, attempt, maxAttempts, expected) => {
    expect(failed(classification, attempt, maxAttempts)).toMatchObject(expected);
  });
});
