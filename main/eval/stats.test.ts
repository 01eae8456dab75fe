import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax, bonKlBound, distinctN, fitLine, meanCI, median, pearson, tQuantile975, wilson, winRate } from './stats.ts';

const near = (a: number, b: number, tol = 1e-3) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('t quantiles: the table, and the large-df series tends to 1.96', () => {
  near(tQuantile975(1), 12.706);
  near(tQuantile975(10), 2.228);
  near(tQuantile975(60), 2.0003, 2e-3);
  near(tQuantile975(1e6), 1.96);
});

test('mean with a 95% t-interval', () => {
  const r = meanCI([1, 2, 3, 4]);
  assert.equal(r.mean, 2.5);
  const h = 3.182 * Math.sqrt(5 / 3) / 2; // sd = sqrt(5/3), df = 3
  near(r.ci95[0], 2.5 - h);
  near(r.ci95[1], 2.5 + h);
});

test('Wilson interval: known values, ties as half a win', () => {
  const w = wilson(8, 10); // textbook: 0.8, [0.490, 0.943]
  near(w.ci95[0], 0.4902);
  near(w.ci95[1], 0.9433);
  const r = winRate([1, 1, 0.5, 0]);
  assert.equal(r.rate, 0.625);
  assert.deepEqual([r.wins, r.ties, r.losses], [2, 1, 1]);
  near(wilson(0, 5).ci95[0], 0, 1e-12);
  near(wilson(0, 5).ci95[1], 0.4345);
  assert.throws(() => winRate([2]), /must be 1/);
});

test('distinct-n, correlation, argmax and the Best-of-N KL bound', () => {
  assert.equal(distinctN([['a', 'b', 'a', 'b']], 2), 2 / 3);
  assert.equal(distinctN([[1, 1, 1]], 1), 1 / 3);
  near(pearson([1, 2, 3], [2, 4, 6]), 1, 1e-12);
  near(pearson([1, 2, 3], [3, 2, 1]), -1, 1e-12);
  assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
  assert.equal(argmax([0.1, 3, 3, -1]), 1);
  assert.throws(() => argmax([]), /at least one/);
  assert.equal(bonKlBound(1), 0);
  near(bonKlBound(16), Math.log(16) - 15 / 16, 1e-12);
});

test('median: middle value, mean of the two middle ones, NaN when empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('a least-squares line recovers y = 2 - 0.5 x exactly, and a noisy one within its noise', () => {
  const xs = [1, 2, 3, 4, 5, 6];
  const exact = fitLine(xs, xs.map((x) => 2 - 0.5 * x));
  near(exact.slope, -0.5, 1e-12);
  near(exact.intercept, 2, 1e-12);
  near(exact.correlation, -1, 1e-12);
  // Residuals -0.1, +0.1, ... around the same line: the slope moves by sum((x - 3.5) e) / sum((x - 3.5)^2) = 0.3 / 17.5.
  const noisy = fitLine(xs, xs.map((x, i) => 2 - 0.5 * x + (i % 2 ? 0.1 : -0.1)));
  near(noisy.slope, -0.5 + 0.3 / 17.5, 1e-12);
  assert.equal(fitLine([3, 3], [1, 2]).slope, 0, 'a constant x explains nothing');
});
