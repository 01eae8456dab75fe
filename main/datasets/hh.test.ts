import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadHhMicrocosm, transcripts } from './hh.ts';

test('the HH microcosm: 2312 dialogues split about 80/20 by prompt, every prompt ends with the Assistant tag', async () => {
  const hh = await loadHhMicrocosm();
  assert.equal(hh.train.length + hh.eval.length, 2312);
  assert.ok(Math.abs(hh.eval.length / 2312 - 0.2) < 0.03, `eval share ${hh.eval.length / 2312}`);
  for (const p of [...hh.train, ...hh.eval]) assert.ok(p.prompt.endsWith('\n\nAssistant:'), 'prompt ends with the Assistant tag');
  const trainPrompts = new Set(hh.train.map((p) => p.prompt));
  assert.ok(hh.eval.every((p) => !trainPrompts.has(p.prompt)), 'no prompt is in both splits');
  assert.equal(transcripts(hh.train).length, 2 * hh.train.length);
});
