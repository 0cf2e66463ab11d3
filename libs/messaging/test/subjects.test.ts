import { describe, expect, it } from 'vitest';
import { isJobType, isPriority, PRIORITIES, subjectMatches } from '@redrive/messaging';

describe('subjectMatches', () => {
  it.each([
    ['jobs.normal.webhook', 'jobs.normal.webhook', true],
    ['jobs.normal.webhook', 'jobs.normal.email', false],
    ['jobs.normal.webhook', 'jobs.normal', false],
    ['jobs.normal', 'jobs.normal.webhook', false],
    ['jobs.*.webhook', 'jobs.high.webhook', true],
    ['jobs.*.webhook', 'jobs.high.email', false],
    ['jobs.*.webhook', 'jobs.webhook', false],
    ['jobs.*', 'jobs.high', true],
    ['jobs.*', 'jobs.high.webhook', false],
    ['jobs.*', 'jobs', false],
    ['*.*.*', 'jobs.high.webhook', true],
    ['jobs.>', 'jobs.high', true],
    ['jobs.>', 'jobs.high.webhook', true],
    ['jobs.>', 'jobs', false],
    ['jobs.>', 'dlq.high.webhook', false],
    ['>', 'anything.at.all', true],
    ['jobs.*.>', 'jobs.high.webhook.extra', true],
    ['jobs.*.>', 'jobs.high', false],
    ['$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JOBS.*', '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JOBS.w', true],
  ])('filter %j matches %j: %s', (filter, subject, matches) => {
    expect(subjectMatches(filter, subject)).toBe(matches);
  });
});

describe('isJobType', () => {
  it.each(['webhook', 'send-email', 'sync_crm', 'a', '0day', 'x'.repeat(64)])('accepts %j', (type) => {
    expect(isJobType(type)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['a dot, which would split the subject', 'a.b'],
    ['a wildcard', '*'],
    ['a full wildcard', '>'],
    ['upper case', 'Webhook'],
    ['a space', 'send email'],
    ['a leading dash', '-x'],
    ['a leading underscore', '_x'],
    ['65 characters', 'x'.repeat(65)],
    ['a number', 42],
    ['undefined', undefined],
  ])('refuses %s', (_label, type) => {
    expect(isJobType(type)).toBe(false);
  });
});

describe('isPriority', () => {
  it('lists the lanes highest first', () => {
    expect(PRIORITIES).toEqual(['high', 'normal', 'low']);
  });

  it.each([
    ['high', true],
    ['normal', true],
    ['low', true],
    ['urgent', false],
    ['HIGH', false],
    ['', false],
    [1, false],
    [null, false],
  ])('%j is a priority: %s', (value, expected) => {
    expect(isPriority(value)).toBe(expected);
  });
});
