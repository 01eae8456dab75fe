// The status line every foreground command draws through: in place on a terminal, a line
// now and then otherwise, log lines above it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatusLine } from './progress.ts';

function stream(tty: boolean): { out: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  const out = { isTTY: tty, columns: 30, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { out, written };
}

test('on a terminal the status is redrawn in place, cut to the width, and taken off for a log line', () => {
  const { out, written } = stream(true);
  const status = new StatusLine(out);
  status.show('training  step 1/10');
  status.show('training  step 2/10'); // within 100 ms of the first: skipped
  status.show('training  step 3/10  a long tail that does not fit', true);
  status.print('a log line');
  status.redraw();
  status.end();
  assert.deepEqual(written, [
    '\r\x1b[2Ktraining  step 1/10',
    '\r\x1b[2Ktraining  step 3/10  a long t', // 29 characters: one less than the width
    '\r\x1b[2K', 'a log line\n',
    '\r\x1b[2Ktraining  step 3/10  a long t', // 29 characters: one less than the width
    '\n',
  ]);
});

test('elsewhere a status is a line of its own, at most once an interval, with no terminal codes', () => {
  const { out, written } = stream(false);
  const status = new StatusLine(out, 60_000);
  status.show('step 1');
  status.show('step 2');
  status.show('step 3 (the last)', true);
  status.print('log');
  status.redraw();
  status.clear();
  assert.deepEqual(written, ['step 1\n', 'step 3 (the last)\n', 'log\n']);
});
