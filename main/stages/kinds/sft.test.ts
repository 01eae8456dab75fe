import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sftStage } from './sft.ts';

test('sft parses loss: nll (the default, left out of the settings) or dft, and refuses others', () => {
  const plain = sftStage.parse({});
  assert.equal('loss' in plain, false, 'the default stays out, so SFT runs stored before the option still match');
  assert.deepEqual(sftStage.parse({ loss: 'nll' }), plain);
  assert.equal(sftStage.parse({ loss: 'dft' }).loss, 'dft');
  assert.throws(() => sftStage.parse({ loss: 'kl' }), /loss must be one of nll, dft, not "kl"/);
});
