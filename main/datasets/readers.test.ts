import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { DatasetRecord, ReadOptions } from './readers.ts';
import { DatasetFormatError, readDataset } from './readers.ts';
import { tempFiles } from '../../test/support/temp-dir.ts';

const { dir, file } = tempFiles('readers');

async function read(path: string, options?: ReadOptions): Promise<DatasetRecord[]> {
  const out: DatasetRecord[] = [];
  for await (const r of readDataset(path, options)) out.push(r);
  return out;
}

/** Asserts that reading fails with a DatasetFormatError at `line` whose sentence names the
 *  file and the line and matches `pattern`. */
async function refused(path: string, line: number | ((n: number) => boolean), pattern: RegExp, options?: ReadOptions): Promise<DatasetFormatError> {
  let caught: unknown;
  try {
    await read(path, options);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DatasetFormatError, `expected a DatasetFormatError, got ${String(caught)}`);
  assert.equal(caught.file, path);
  if (typeof line === 'number') assert.equal(caught.line, line);
  else assert.ok(line(caught.line), `line ${caught.line}`);
  assert.match(caught.message, pattern);
  assert.ok(caught.message.includes(path.split('/').pop() as string), `message names the file: ${caught.message}`);
  assert.match(caught.message, /[.]$/, 'one sentence, ending with a full stop');
  return caught;
}

const H = '\n\nHuman: ';
const A = '\n\nAssistant:';

describe('HH transcripts', () => {
  test('prompt runs through the last Assistant turn; chosen and rejected share it', async () => {
    const dialogue = `${H}hi${A} hello${H}how are you?${A}`;
    const path = file('hh.jsonl', `${JSON.stringify({ chosen: `${dialogue} fine, thanks`, rejected: `${dialogue} go away` })}\n`);
    const reader = readDataset(path);
    const records: DatasetRecord[] = [];
    for await (const r of reader) records.push(r);
    assert.equal(reader.format, 'hh');
    assert.deepEqual(records, [{ prompt: dialogue, response: ' fine, thanks', chosen: ' fine, thanks', rejected: ' go away', line: 1 }]);
  });

  test('a final turn that itself contains "\\n\\nAssistant:" keeps the shared prompt (as in the real data)', async () => {
    const prompt = `${H}rob a house?${A}`;
    const chosen = ` Human: no.${H}please${A} still no`;
    const path = file('hh.jsonl', `${JSON.stringify({ chosen: prompt + chosen, rejected: `${prompt} at 3 AM` })}\n`);
    assert.deepEqual(await read(path), [{ prompt, response: chosen, chosen, rejected: ' at 3 AM', line: 1 }]);
  });

  test('chosen and rejected that differ before their final turn are refused with the line', async () => {
    const ok = JSON.stringify({ chosen: `${H}a${A} x`, rejected: `${H}a${A} y` });
    const bad = JSON.stringify({ chosen: `${H}a${A} x`, rejected: `${H}b${A} y` });
    await refused(file('hh.jsonl', `${ok}\n${bad}\n`), 2, /line 2: "chosen" and "rejected" differ before their final Assistant turn/);
  });

  test('a transcript without an Assistant turn is refused', async () => {
    const path = file('hh.jsonl', `${JSON.stringify({ chosen: `${H}a${A} x`, rejected: `${H}a${A} y` })}\n${JSON.stringify({ chosen: 'plain text', rejected: `${H}a${A} y` })}\n`);
    await refused(path, 2, /line 2: "chosen" has no "\\n\\nAssistant:" turn/);
  });

  test('format: hh is enforced when requested', async () => {
    await refused(file('x.jsonl', `${JSON.stringify({ prompt: 'p', response: 'r' })}\n`), 1, /line 1: the field "chosen" is missing/, { format: 'hh' });
  });
});

describe('JSON Lines', () => {
  test('prompt with response, completion, or a chosen/rejected pair', async () => {
    const lines = [
      { prompt: 'p1', response: 'r1' },
      { prompt: 'p2', completion: 'c2', extra: 1 },
      { prompt: 'p3', chosen: 'good', rejected: 'bad' },
    ].map((o) => JSON.stringify(o));
    const path = file('mixed.jsonl', `${lines[0]}\n\n${lines[1]}\r\n${lines[2]}`); // blank line, CRLF, no final newline
    assert.deepEqual(await read(path), [
      { prompt: 'p1', response: 'r1', line: 1 },
      { prompt: 'p2', response: 'c2', line: 3 },
      { prompt: 'p3', response: 'good', chosen: 'good', rejected: 'bad', line: 4 },
    ]);
  });

  test('messages go through the caller\'s chat template', async () => {
    const messages = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }];
    const path = file('chat.jsonl', `${JSON.stringify({ messages })}\n`);
    const seen: unknown[] = [];
    const records = await read(path, {
      renderMessages: (m) => {
        seen.push(m);
        return { prompt: `<user>${m[0].content}<assistant>`, response: m[1].content };
      },
    });
    assert.deepEqual(seen, [messages]);
    assert.deepEqual(records, [{ prompt: '<user>hi<assistant>', response: 'hello', line: 1 }]);
  });

  test('messages without a chat template are refused with a sentence saying what to do', async () => {
    const path = file('chat.jsonl', `${JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })}\n`);
    await refused(path, 1, /line 1: the line is a chat \("messages"\), which needs the chat template of a model.*choose the model/);
  });

  test('a UTF-8 BOM is dropped and non-ASCII text survives', async () => {
    const path = file('bom.jsonl', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${JSON.stringify({ prompt: 'héllo ✓ 日本', response: '🙂' })}\n`)]));
    assert.deepEqual(await read(path), [{ prompt: 'héllo ✓ 日本', response: '🙂', line: 1 }]);
  });

  test('the format is found from the content when the name does not tell', async () => {
    const path = file('data.txt', `${JSON.stringify({ prompt: 'p', response: 'r' })}\n`);
    const reader = readDataset(path);
    for await (const _ of reader) { /* drain */ }
    assert.equal(reader.format, 'jsonl');
  });

  test('truncated JSON', async () => {
    const path = file('cut.jsonl', `${JSON.stringify({ prompt: 'p', response: 'r' })}\n{"prompt": "p2", "resp`);
    await refused(path, 2, /line 2: the line is not valid JSON \(.*\); if this is the last line the file may be cut off/);
  });

  test('a line that is not an object', async () => {
    await refused(file('arr.jsonl', `${JSON.stringify({ prompt: 'p', response: 'r' })}\n[1, 2]\n`), 2, /line 2: the line is an array, not a JSON object/);
    await refused(file('str.jsonl', '"just text"\n'), 1, /line 1: the line is a string, not a JSON object/);
    await refused(file('null.jsonl', 'null\n'), 1, /line 1: the line is null, not a JSON object/);
  });

  test('a JSON array file is recognised and the conversion explained', async () => {
    await refused(file('data.json', '[\n{"prompt": "p", "response": "r"}\n]\n'), 1, /line 1: the file is one JSON array, not JSON Lines.*jq -c/);
  });

  test('missing fields', async () => {
    await refused(file('m1.jsonl', '{"response": "r"}\n'), 1, /line 1: the field "prompt" is missing/);
    await refused(file('m2.jsonl', '{"prompt": "p"}\n'), 1, /line 1: the line has a "prompt" but no response/);
    await refused(file('m3.jsonl', '{"prompt": "p", "chosen": "c"}\n'), 1, /line 1: the field "rejected" is missing; a preference pair needs both/);
  });

  test('wrong field types', async () => {
    await refused(file('t1.jsonl', '{"prompt": "p", "response": "r"}\n{"prompt": 5, "response": "r"}\n'), 2, /line 2: the field "prompt" is a number, not a string/);
    await refused(file('t2.jsonl', '{"prompt": "p", "response": null}\n'), 1, /line 1: the field "response" is null, not a string/);
    await refused(file('t3.jsonl', '{"messages": "hi"}\n'), 1, /line 1: the field "messages" is a string, not a list/);
    await refused(file('t4.jsonl', '{"messages": [{"role": "user", "content": 3}]}\n'), 1, /line 1: message 1 needs a string "role" and a string "content"/);
  });

  test('wrong types inside a chat', async () => {
    await refused(file('t5.jsonl', '{"messages": []}\n'), 1, /line 1: the field "messages" is an empty list, not a list of \{"role", "content"\} objects/);
    await refused(file('t6.jsonl', '{"messages": [{"role": "user", "content": "hi"}, "bye"]}\n'), 1, /line 1: message 2 is a string, not a \{"role", "content"\} object/);
    await refused(file('t7.jsonl', '{"messages": [{"content": "hi"}]}\n'), 1, /line 1: message 1 needs a string "role" and a string "content"/);
  });

  test('other fields are ignored, but a misspelt one is refused with the field it means', async () => {
    const extra = { id: 7, source: 'web', prompt_id: 'a1', choice: 1, score_chosen: 8, system: 'be kind', prompt: 'p', response: 'r' };
    assert.deepEqual(await read(file('extra.jsonl', `${JSON.stringify(extra)}\n`)), [{ prompt: 'p', response: 'r', line: 1 }]);
    await refused(file('typo1.jsonl', '{"prompt": "p", "response": "r"}\n{"promt": "p", "response": "r"}\n'), 2, /line 2: the field "promt" looks like a misspelt "prompt", which the line lacks; rename it/);
    await refused(file('typo2.jsonl', '{"Prompt": "p", "Response": "r"}\n'), 1, /line 1: the field "Prompt" looks like a misspelt "prompt"/);
    // A pair whose rejected response is misspelt would otherwise be refused as half a pair, or its key ignored.
    await refused(file('typo3.jsonl', '{"prompt": "p", "chosen": "c", "rejeted": "r"}\n'), 1, /line 1: the field "rejeted" looks like a misspelt "rejected"/);
    await refused(file('typo4.jsonl', '{"prompt": "p", "response": "r", "mesages": [{"role": "user", "content": "hi"}]}\n'), 1, /the field "mesages" looks like a misspelt "messages"/);
    // Close to a field the line has, or holding another kind of value: not a misspelling.
    assert.equal((await read(file('near.jsonl', '{"prompt": "p", "response": "r", "responses": "x", "chosen_": 3}\n'))).length, 1);
  });

  test('both response and completion is ambiguous', async () => {
    await refused(file('both.jsonl', '{"prompt": "p", "response": "r", "completion": "c"}\n'), 1, /both "response" and "completion"/);
  });
});

describe('CSV', () => {
  test('RFC 4180 quoting: commas, doubled quotes, quoted newlines (LF and CRLF)', async () => {
    const csv = [
      'prompt,response',
      'plain,text',
      '"with, comma","say ""hi"""',
      '"two',
      'lines","three',
      '',
      'lines"',
      '"",empty prompt',
    ].join('\n');
    assert.deepEqual(await read(file('q.csv', `${csv}\n`)), [
      { prompt: 'plain', response: 'text', line: 2 },
      { prompt: 'with, comma', response: 'say "hi"', line: 3 },
      { prompt: 'two\nlines', response: 'three\n\nlines', line: 4 },
      { prompt: '', response: 'empty prompt', line: 8 },
    ]);
    assert.deepEqual(await read(file('crlf.csv', 'Prompt , COMPLETION\r\n"a\r\nb",c\r\n')), [{ prompt: 'a\r\nb', response: 'c', line: 2 }]);
  });

  test('prompt/chosen/rejected columns in any order; the format is found from content', async () => {
    const path = file('pairs.txt', 'rejected,prompt,chosen\nbad,p,good\n');
    const reader = readDataset(path);
    const records: DatasetRecord[] = [];
    for await (const r of reader) records.push(r);
    assert.equal(reader.format, 'csv');
    assert.deepEqual(records, [{ prompt: 'p', response: 'good', chosen: 'good', rejected: 'bad', line: 2 }]);
  });

  test('format: csv overrides the extension', async () => {
    assert.deepEqual(await read(file('data.jsonl', 'prompt,response\np,r\n'), { format: 'csv' }), [{ prompt: 'p', response: 'r', line: 2 }]);
  });

  test('unterminated quote is refused at the line where the field starts', async () => {
    await refused(file('open.csv', 'prompt,response\np,r\n"never closed,r\nmore\n'), 3, /line 3: a quoted field opened on this line is never closed \(unterminated quote\)/);
  });

  test('stray quotes are refused', async () => {
    await refused(file('stray1.csv', 'prompt,response\np,r\nsa"y,r\n'), 3, /line 3: column 1 has a quote inside an unquoted field \(stray quote\)/);
    await refused(file('stray2.csv', 'prompt,response\n"p"x,r\n'), 2, /line 2: there is text after the closing quote of column 1 \(stray quote\)/);
  });

  test('missing columns and ragged rows', async () => {
    await refused(file('nocol.csv', 'question,answer\nq,a\n'), 1, /line 1: the header row has no "prompt" column \(it has "question", "answer"\)/);
    await refused(file('ragged.csv', 'prompt,response\np,r\np,r,extra\n'), 3, /line 3: the row has 3 fields but the header has 2; put fields that contain commas in quotes/);
  });

  test('other columns are ignored, but a misspelt one is refused with the column it means', async () => {
    assert.deepEqual(await read(file('cols.csv', 'id,Prompt,Response,source\n1,p,r,web\n')), [{ prompt: 'p', response: 'r', line: 2 }]);
    await refused(file('typo.csv', 'promt,response\np,r\n'), 1, /line 1: the header names the column "promt", which looks like a misspelt "prompt"; rename it/);
    await refused(file('typo2.csv', 'prompt,chosen,rejectd\np,c,r\n'), 1, /the column "rejectd", which looks like a misspelt "rejected"/);
  });

  test('a header with no rows has no examples', async () => {
    await refused(file('header.csv', 'prompt,response\n'), 1, /has no examples: it has only the header row \(line 1\)/);
  });
});

describe('gzip, encoding, limits', () => {
  test('.gz is read transparently, and detected by its bytes whatever the name', async () => {
    const text = `${JSON.stringify({ prompt: 'p', response: 'r' })}\n`;
    assert.deepEqual(await read(file('d.jsonl.gz', gzipSync(text))), [{ prompt: 'p', response: 'r', line: 1 }]);
    assert.deepEqual(await read(file('d.csv.gz', gzipSync('prompt,response\n"a\nb",c\n'))), [{ prompt: 'a\nb', response: 'c', line: 2 }]);
    assert.deepEqual(await read(file('d.jsonl', gzipSync(text))), [{ prompt: 'p', response: 'r', line: 1 }]);
  });

  test('bytesRead counts the compressed bytes, up to the file size', async () => {
    const gz = gzipSync(`${JSON.stringify({ prompt: 'p', response: 'r' })}\n`.repeat(1000));
    const reader = readDataset(file('n.jsonl.gz', gz));
    let n = 0;
    for await (const _ of reader) n++;
    assert.equal(n, 1000);
    assert.equal(reader.bytesRead, gz.length);
  });

  test('truncated gzip', async () => {
    const full = gzipSync(Array.from({ length: 5000 }, (_, i) => JSON.stringify({ prompt: `p${i}`, response: 'r'.repeat(i % 50) })).join('\n'));
    // The line depends on where the cut falls; it must be named and lie inside the file.
    const err = await refused(file('cut.jsonl.gz', full.subarray(0, Math.floor(full.length * 0.6))), (n) => n > 1000 && n < 5000, /the gzip data is truncated or damaged here \(unexpected end of file\); copy or download the file again\.$/);
    assert.match(err.message, new RegExp(`cut\\.jsonl\\.gz, line ${err.line}: `));
  });

  test('invalid UTF-8 is refused with the line and byte', async () => {
    const bytes = Buffer.concat([Buffer.from('{"prompt": "p", "response": "r"}\n{"prompt": "caf'), Buffer.from([0xe9]), Buffer.from('", "response": "r"}\n')]);
    await refused(file('latin1.jsonl', bytes), 2, /line 2: the text is not valid UTF-8 \(at byte 16 of the line\); save the file as UTF-8/);
  });

  test('UTF-16 is recognised', async () => {
    await refused(file('u16.jsonl', Buffer.from('\ufeff{"prompt": "p"}', 'utf16le')), 1, /the file is UTF-16 text; save it as UTF-8/);
  });

  test('an empty file, or one of blank lines, has no examples', async () => {
    await refused(file('empty.jsonl', ''), 0, /^\d+-empty\.jsonl has no examples: it is empty; choose a file with at least one example\.$/);
    await refused(file('blank.jsonl', '\n  \n'), 2, /has no examples: its 2 lines are blank/);
    await refused(file('empty.jsonl.gz', gzipSync('')), 0, /has no examples: it is empty/);
  });

  test('a 10 MB line is refused without reading it whole; the limit can be raised', async () => {
    const long = JSON.stringify({ prompt: 'p', response: 'x'.repeat(10 * 1024 * 1024) });
    const path = file('long.jsonl', `${JSON.stringify({ prompt: 'p', response: 'r' })}\n${long}\n`);
    await refused(path, 2, /line 2: the line is longer than 8 MB, the limit for one example/);
    assert.equal((await read(path, { maxLineBytes: 16 * 1024 * 1024 })).length, 2);
  });

  test('a quoted CSV field that runs past the limit is refused', async () => {
    const path = file('runaway.csv', `prompt,response\n"open,r\n${`${'x'.repeat(400)}\n`.repeat(10)}`);
    await refused(path, 2, /line 2: the quoted field that starts on this line runs past 1 KB \(line 5\), so its closing quote is probably missing; add it\.$/, { maxLineBytes: 1024 });
  });

  test('a missing file is a sentence, not a stack', async () => {
    await assert.rejects(read(join(dir, 'nope.jsonl')), /Could not open .*nope\.jsonl: there is no such file; check the path\./);
  });

  test('stopping early closes the file (no leak, no error)', async () => {
    const path = file('many.jsonl', `${JSON.stringify({ prompt: 'p', response: 'r' })}\n`.repeat(100000));
    let n = 0;
    for await (const _ of readDataset(path)) if (++n === 3) break;
    assert.equal(n, 3);
  });
});
