import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { chatRenderer } from './chat.ts';

test("a chat becomes the prompt up to the assistant's turn and the reply the template adds", async () => {
  const render = chatRenderer(await Tokenizer.fromFolder(DEFAULT_MODEL_DIR));
  const r = render([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' }]);
  assert.deepEqual(r, { prompt: '\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant:', response: ' See you.' });
  assert.throws(() => render([{ role: 'user', content: 'Hi' }]), /must end with an assistant message/);
});
