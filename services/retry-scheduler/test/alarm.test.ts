import { describe, expect, it } from 'vitest';
import { Alarm } from '../src/wakeup.js';

describe('Alarm', () => {
  it('sleeps until its time', async () => {
    const alarm = new Alarm();
    const started = Date.now();
    await alarm.wait(started + 80);
    expect(Date.now() - started).toBeGreaterThanOrEqual(79);
  });

  it('wakes early for a nearer time', async () => {
    const alarm = new Alarm();
    const started = Date.now();
    setTimeout(() => alarm.wake(started + 50), 10);
    await alarm.wait(started + 5_000);
    const slept = Date.now() - started;
    expect(slept).toBeGreaterThanOrEqual(49);
    expect(slept).toBeLessThan(1_000);
  });

  it('ignores a later time', async () => {
    const alarm = new Alarm();
    const started = Date.now();
    setTimeout(() => alarm.wake(started + 5_000), 10);
    await alarm.wait(started + 60);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('remembers a wake that came while nobody waited', async () => {
    const alarm = new Alarm();
    alarm.wake(Date.now());
    const started = Date.now();
    await alarm.wait(started + 5_000);
    expect(Date.now() - started).toBeLessThan(100);
  });

  it('ends every wait once stopped', async () => {
    const alarm = new Alarm();
    const started = Date.now();
    setTimeout(() => alarm.stop(), 10);
    await alarm.wait(started + 5_000);
    await alarm.wait(started + 5_000);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
