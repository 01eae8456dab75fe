// Batching for sequence objectives: what is a target, what is masked, where the last
// real token is, and how long pairs are cut.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { encodePair, loadModel, sequenceFeeds } from './lm.ts';

test('sequenceFeeds: next-token targets, a mask on response targets only, the last real token of each row', () => {
  // Row 0: prompt [5, 6], response [7, 8]; row 1: prompt [9], response [3] (shorter, padded with 0).
  const f = sequenceFeeds([{ ids: [5, 6, 7, 8], start: 2 }, { ids: [9, 3], start: 1 }], 0);
  assert.deepEqual(f.tokens.dims, [2, 3]);
  assert.deepEqual([...(f.tokens.data as BigInt64Array)].map(Number), [5, 6, 7, 9, 0, 0]);
  assert.deepEqual([...(f.targets.data as BigInt64Array)].map(Number), [6, 7, 8, 3, 0, 0]);
  // Targets 7 and 8 (the response) count; 6 (prompt) and padding do not.
  assert.deepEqual([...(f.mask.data as Float32Array)], [0, 1, 1, 1, 0, 0]);
  // Flat indices b*T + t of the last input position of each row.
  assert.deepEqual([...(f.last.data as BigInt64Array)].map(Number), [2, 3]);
});

test('encodePair keeps the response and EOS, dropping the oldest prompt tokens when too long', async () => {
  const m = await loadModel(DEFAULT_MODEL_DIR);
  const prompt = '\n\nHuman: ' + 'tell me more about this '.repeat(40) + '\n\nAssistant:';
  const full = encodePair(m, prompt, ' Sure.', 4096);
  const response = m.tokenizer.encode(' Sure.', { addSpecialTokens: false });
  assert.deepEqual(full.ids.slice(full.start), [...response, m.eosId]);
  const cut = encodePair(m, prompt, ' Sure.', 32);
  assert.equal(cut.ids.length, 32);
  assert.deepEqual(cut.ids.slice(cut.start), [...response, m.eosId], 'the response survives the cut');
  assert.deepEqual(cut.ids.slice(0, cut.start), full.ids.slice(full.start - cut.start, full.start), 'the prompt keeps its most recent tokens');
});
