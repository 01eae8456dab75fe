import assert from 'node:assert/strict';
import { test } from 'node:test';
import { linePlotSvg } from './svg-plot.ts';

test('a line plot has one polyline per series, a band for intervals, and escapes labels', () => {
  const svg = linePlotSvg(
    [
      { name: 'a<b', points: [{ x: 1, y: 1, lo: 0.5, hi: 1.5 }, { x: 2, y: 2, lo: 1.5, hi: 2.5 }, { x: 4, y: 3, lo: 2, hi: 4 }] },
      { name: 'flat', points: [{ x: 1, y: 2 }, { x: 4, y: 2 }], dashed: true },
    ],
    { title: 'T & t', xLabel: 'N', yLabel: 'reward', logX: true },
  );
  assert.equal(svg.match(/<polyline/g)?.length, 2);
  assert.equal(svg.match(/<polygon/g)?.length, 1);
  assert.ok(svg.includes('a&lt;b') && svg.includes('T &amp; t'));
  assert.ok(svg.startsWith('<svg') && svg.endsWith('</svg>'));
  assert.throws(() => linePlotSvg([], { title: 'empty', xLabel: '', yLabel: '' }), /no points/);
});

test('the legend margin grows with the longest series name, so no name runs off the image', () => {
  const legendX = (svg: string): number => Number(/<text x="([\d.]+)" y="[\d.]+">bon:/.exec(svg)![1]);
  const plot = (name: string): string => linePlotSvg([{ name, points: [{ x: 1, y: 1 }, { x: 2, y: 2 }] }], { title: 't', xLabel: 'x', yLabel: 'y' });
  assert.equal(legendX(plot('bon:short')), 720 - 170 + 40);
  const long = 'bon:density-ratio-per-token';
  const x = legendX(plot(long));
  assert.ok(x + 7 * long.length <= 720, `the name starts at ${x} and needs about ${7 * long.length} px`);
});
