import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stableSplit } from './split.ts';

// Hash fractions computed independently (Python: int.from_bytes(sha256(p)[:8], 'big') / 2**64).
const KNOWN: [string, number][] = [
  ['', 0.8894159948913374],
  ['hello', 0.17557225990430197],
  ['\n\nHuman: hi\n\nAssistant:', 0.6816107801175496],
  ['héllo ✓', 0.33727728937312534],
];

test('eval exactly when the hash fraction is below evalFraction', () => {
  for (const [prompt, fraction] of KNOWN) {
    assert.equal(stableSplit(prompt), fraction < 0.2 ? 'eval' : 'train', JSON.stringify(prompt));
    assert.equal(stableSplit(prompt, fraction + 1e-9), 'eval');
    assert.equal(stableSplit(prompt, fraction - 1e-9), 'train');
  }
});

test('0 puts everything in train, 1 everything in eval', () => {
  for (const [prompt] of KNOWN) {
    assert.equal(stableSplit(prompt, 0), 'train');
    assert.equal(stableSplit(prompt, 1), 'eval');
  }
});

test('about evalFraction of many prompts land in eval', () => {
  let n = 0;
  for (let i = 0; i < 20000; i++) if (stableSplit(`prompt ${i}`, 0.2) === 'eval') n++;
  assert.ok(Math.abs(n / 20000 - 0.2) < 0.015, `${n} of 20000`);
});

test('a fraction outside [0, 1] is refused with a sentence', () => {
  for (const bad of [-0.1, 1.5, Number.NaN]) assert.throws(() => stableSplit('p', bad), /The eval fraction must be a number from 0 to 1/);
});
