import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressClock } from './eta.ts';

test('time left comes from the recent pace; an unknown total gives an unknown fraction', () => {
  const clock = new ProgressClock({ windowMs: 10_000 });
  assert.deepEqual(clock.update(0, 100, 0), { fraction: 0, etaMs: null, rate: null });
  // A slow first step (compilation), then 10 steps per second.
  clock.update(1, 100, 5000);
  for (let s = 2; s <= 60; s++) clock.update(s, 100, 5000 + (s - 1) * 100);
  const e = clock.update(61, 100, 5000 + 60 * 100);
  assert.equal(e.fraction, 0.61);
  assert.ok(Math.abs((e.rate ?? 0) - 10) < 1e-9, `rate ${e.rate}`);
  assert.ok(Math.abs((e.etaMs ?? 0) - 3900) < 1e-6, `eta ${e.etaMs}`);
  assert.deepEqual(new ProgressClock().update(5, null, 0).fraction, 'unknown');
  const unknown = new ProgressClock();
  unknown.update(5, null, 0);
  assert.deepEqual(unknown.update(10, null, 1000), { fraction: 'unknown', etaMs: null, rate: 5 });
});

test('a count that goes back (a resumed run) starts the estimate over', () => {
  const clock = new ProgressClock();
  clock.update(50, 100, 0);
  clock.update(60, 100, 1000);
  assert.deepEqual(clock.update(40, 100, 2000), { fraction: 0.4, etaMs: null, rate: null });
});
