// The store commands as a user runs them: `node bin/afd.js ... --db FILE` in a child
// process. Output formats, error sentences (no stack without --debug), Ctrl-C, and a
// cancel asked from a second process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exportHfModel } from '../../native-models/checkpoint/index.ts';
import { gpt2Defaults, gpt2Family } from '../../native-models/models/gpt2.ts';
import { Rng } from '../../native-models/train/rng.ts';

const AFD = fileURLToPath(new URL('../../bin/afd.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'afd-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, 'studio.db');

interface Result { code: number | null; stdout: string; stderr: string }

function afd(args: string[], options: { onStart?: (child: ReturnType<typeof spawn>) => void } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AFD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    options.onStart?.(child);
  });
}

const json = <T>(r: Result): T => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};

test('datasets: import with progress, list, show, search, export', async () => {
  const file = join(dir, 'demo.jsonl');
  writeFileSync(file, ['apples', 'pears', 'apple pie', 'plums'].map((w, i) => `${JSON.stringify({ prompt: `Tell me about ${w}`, response: `${w} are nice (${i})` })}\n`).join(''));
  const imported = await afd(['datasets', 'import', file, '--name', 'demo', '--db', db]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^Imported "demo": 4 examples \(train \d, eval \d\) from 4 jsonl records, 0 exact duplicates dropped in \d+ s\.\n$/);
  assert.match(imported.stderr, /Importing demo {2}100% {2}\d+ B of \d+ B/);

  const list = json<{ name: string; examples: number }[]>(await afd(['datasets', 'list', '--json', '--db', db]));
  assert.deepEqual(list.map((d) => [d.name, d.examples]), [['demo', 4]]);
  assert.match((await afd(['datasets', 'list', '--db', db])).stdout, /^name\s+examples.*\ndemo\s+4 /);

  const found = json<{ prompt: string }[]>(await afd(['datasets', 'show', 'demo', '--json', '--search', 'apple', '--limit', '1', '--db', db]));
  assert.deepEqual(found.map((e) => e.prompt), ['Tell me about apples']);
  const shown = await afd(['datasets', 'show', 'demo', '--search', 'apple', '--db', db]);
  assert.match(shown.stdout, /^demo: 4 examples .*\nExamples 1-2 of 2 matching "apple":\n/);
  assert.match(shown.stdout, /prompt: {4}Tell me about apple pie/);

  const exported = await afd(['datasets', 'export', 'demo', '--db', db]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.deepEqual(exported.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { prompt: string }).prompt), ['apples', 'pears', 'apple pie', 'plums'].map((w) => `Tell me about ${w}`));
  const out = join(dir, 'out.jsonl');
  const toFile = await afd(['datasets', 'export', 'demo', '--out', out, '--db', db]);
  assert.match(toFile.stderr, /^Exported 4 examples of "demo" to .*out\.jsonl\.\n$/);
  assert.equal(readFileSync(out, 'utf8'), exported.stdout);
});

test('errors are one sentence on stderr with a non-zero exit; --debug adds the stack', async () => {
  const missing = await afd(['datasets', 'show', 'nope', '--db', db]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^afd datasets show: There is no dataset named "nope"; the store has "demo"\.\n$/);
  const debug = await afd(['datasets', 'show', 'nope', '--db', db, '--debug']);
  assert.match(debug.stderr, /\n\s+at /);
  const taken = await afd(['datasets', 'import', join(dir, 'demo.jsonl'), '--name', 'demo', '--db', db]);
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, /afd datasets import: A dataset named "demo" already exists; choose another name or delete the old dataset first\.\n$/);
  const badFile = await afd(['datasets', 'import', join(dir, 'none.jsonl'), '--name', 'x', '--db', db]);
  assert.match(badFile.stderr, /afd datasets import: Could not read .*none\.jsonl \(ENOENT\); check that the path names a dataset file\.\n$/);
  assert.match((await afd(['runs', 'resume', '999', '--db', db])).stderr, /^afd runs resume: There is no run #999; check the number with `afd runs list`\.\n$/);
  assert.match((await afd(['runs', 'show', 'x', '--db', db])).stderr, /'x' is not a run id/);
  assert.match((await afd(['train-tiny', '--db', db])).stderr, /^afd train-tiny: Say how many steps to train with --steps: usage: afd train-tiny --steps N/);
  const noFolder = await afd(['datasets', 'list', '--db', join(dir, 'no', 'such', 'folder', 'x.db')]);
  assert.equal(noFolder.code, 1);
  assert.match(noFolder.stderr, /^afd datasets list: Could not open the database .*; check that the folder exists and is writable\.\n$/);
  // A throwaway database for tests and trials: only the embedded model.
  assert.deepEqual(json<{ kind: string }[]>(await afd(['models', 'list', '--json', '--db', ':memory:'])).map((m) => m.kind), ['builtin']);
});

test('train-tiny runs as a recorded job; runs list and show report it', async () => {
  const trained = await afd(['train-tiny', '--steps', '8', '--checkpoint-every', '4', '--db', db]);
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stdout, /^Run #(\d+) trained 8 steps in \d+ s; final loss \d\.\d{3}\.\n$/);
  const id = Number(/#(\d+)/.exec(trained.stdout)?.[1]);
  const runs = json<{ id: number; stage: string; status: string }[]>(await afd(['runs', 'list', '--json', '--db', db]));
  assert.deepEqual(runs.map((r) => [r.stage, r.status]), [['train-tiny-lm', 'done'], ['import-dataset', 'done']]);
  const shown = json<{ run: { status: string; config: { steps: number } }; metrics: { name: string; lastStep: number }[]; logs: { text: string }[]; checkpointFile: string }>(await afd(['runs', 'show', String(id), '--json', '--db', db]));
  assert.deepEqual([shown.run.status, shown.run.config.steps], ['done', 8]);
  assert.deepEqual(shown.metrics.map((m) => [m.name, m.lastStep]), [['grad_norm', 8], ['loss', 8]]);
  assert.deepEqual(shown.logs.map((l) => l.text), ['Started on cpu.', 'Done.']);
  assert.ok(shown.checkpointFile.endsWith(`studio.db.files/runs/${id}/checkpoint.safetensors`));
  const human = await afd(['runs', 'show', String(id), '--db', db]);
  assert.match(human.stdout, new RegExp(`^Run #${id}: train-tiny-lm, done on cpu\\n`));
  assert.match(human.stdout, /\n\s+loss\s+8\s+8\s+\d\.\d{3}\s/);
});

test('Ctrl-C cancels with a checkpoint; `runs resume` continues it; `runs cancel` in another process stops it', async () => {
  // Acts half a second after the job has started (non-terminal progress lines are sparse).
  const afterStart = (child: ReturnType<typeof spawn>, act: () => void): void => {
    let seen = false;
    child.stderr?.on('data', (d: Buffer) => {
      if (seen || !/Started on cpu\.|Resumed at step/.test(d.toString())) return;
      seen = true;
      setTimeout(act, 500);
    });
  };
  const interrupted = await afd(['train-tiny', '--steps', '2000', '--checkpoint-every', '10', '--db', db], { onStart: (c) => afterStart(c, () => c.kill('SIGINT')) });
  assert.equal(interrupted.code, 130, interrupted.stderr);
  assert.match(interrupted.stderr, /Cancelling at the next step boundary/);
  assert.match(interrupted.stderr, /Run #(\d+) is cancelled; `afd runs resume \1` continues it from its checkpoint\.\n$/);
  const id = Number(/Run #(\d+) is cancelled/.exec(interrupted.stderr)?.[1]);

  // A second process asks the owner to stop; the owner checkpoints and exits non-zero.
  const cancelled: Result[] = [];
  const resumed = await afd(['runs', 'resume', String(id), '--db', db], {
    onStart: (c) => afterStart(c, () => void afd(['runs', 'cancel', String(id), '--db', db]).then((r) => cancelled.push(r))),
  });
  assert.equal(resumed.code, 1, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`Run #${id} is cancelled`));
  while (cancelled.length === 0) await new Promise((r) => setTimeout(r, 50));
  assert.equal(cancelled[0].code, 0, cancelled[0].stderr);
  assert.match(cancelled[0].stderr, new RegExp(`^Asked run #${id} to cancel; waiting for the process running it\\.\\.\\.\\n$`));
  assert.equal(cancelled[0].stdout, `Run #${id} is cancelled; \`afd runs resume ${id}\` continues it from its checkpoint.\n`);
  const again = await afd(['runs', 'cancel', String(id), '--db', db]);
  assert.match(again.stderr, /has already finished \(cancelled\); there is nothing to cancel\./);
  const shown = json<{ logs: { text: string }[] }>(await afd(['runs', 'show', String(id), '--json', '--db', db]));
  assert.equal(shown.logs.filter((l) => l.text.startsWith('Cancelled at step')).length, 2);
});

test('models: import a Hugging Face folder, list it, export it as it is and as F16', async () => {
  const config = gpt2Defaults({ vocabSize: 30, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 });
  const src = join(dir, 'hf-tiny');
  await exportHfModel(src, { family: gpt2Family, config, weights: gpt2Family.init(config, new Rng(1)) });
  const imported = await afd(['models', 'import', src, '--db', db]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^Imported model #1 \("hf-tiny"\): gpt2, 2,064 parameters in \d+ s\.\n$/);
  const models = json<{ id: number; name: string; kind: string; family: string; folder: string }[]>(await afd(['models', 'list', '--json', '--db', db]));
  assert.deepEqual(models.filter((m) => m.kind !== 'builtin').map((m) => [m.id, m.name, m.family]), [[1, 'hf-tiny', 'gpt2']]);
  const same = join(dir, 'export-same');
  assert.match((await afd(['models', 'export', 'hf-tiny', '--out', same, '--db', db])).stderr, /^Exported model #1 \("hf-tiny"\) to .*export-same\.\n$/);
  assert.deepEqual(readFileSync(join(same, 'model.safetensors')), readFileSync(join(src, 'model.safetensors')));
  const half = join(dir, 'export-f16');
  assert.equal((await afd(['models', 'export', '1', '--out', half, '--dtype', 'f16', '--db', db])).code, 0);
  assert.equal((JSON.parse(readFileSync(join(half, 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype, 'float16');
  assert.match((await afd(['models', 'export', '1', '--out', half, '--db', db])).stderr, /Cannot export to .*export-f16: it exists and is not an empty folder; choose a new folder\./);
  assert.match((await afd(['models', 'export', 'nope', '--out', join(dir, 'x'), '--db', db])).stderr, /There is no model "nope"/);
});

test('models: a GGUF file in, GGUF out (Q8_0), and bad GGUF files refused in one sentence with the store unchanged', async () => {
  const { exportGguf } = await import('../../native-models/checkpoint/gguf/from-hf.ts');
  const { openGguf, readGgufTensorRaw, typedMetadata } = await import('../../native-models/checkpoint/gguf/reader.ts');
  const { writeGguf, gguf } = await import('../../native-models/checkpoint/gguf/writer.ts');
  const { ggmlTypeSize } = await import('../../native-models/checkpoint/gguf/quants.ts');
  const { llamaDefaults, llamaFamily } = await import('../../native-models/models/llama.ts');
  // A tiny Llama with the default model's tokenizer, as a GGUF file a user brings.
  const config = llamaDefaults({ vocabSize: 4096, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2 });
  const good = join(dir, 'tiny-llama.gguf');
  const defaultModel = fileURLToPath(new URL('../../models/default', import.meta.url));
  await exportGguf(good, { family: llamaFamily, config, weights: llamaFamily.init(config, new Rng(2)), tokenizerFrom: defaultModel, type: 'f16', name: 'tiny' });

  const before = json<{ id: number }[]>(await afd(['models', 'list', '--json', '--db', db])).length;
  const storeFiles = (): string[] => readdirSync(join(`${db}.files`, 'runs'), { recursive: true }).map(String).filter((p) => p.endsWith('model.safetensors')).sort();
  const filesBefore = storeFiles();

  /** A copy of the good file with its metadata edited (tensors passed through as they are). */
  async function variant(name: string, edit: (meta: Map<string, ReturnType<typeof gguf.u32>>) => void, rawType?: number): Promise<string> {
    const f = await openGguf(good);
    const meta = typedMetadata(f);
    edit(meta);
    const path = join(dir, name);
    // rawType: the second tensor stored (as zeros) in a type no dequantizer reads.
    await writeGguf(path, meta, f.tensors.map((t, i) => (i === 1 && rawType !== undefined
      ? { name: t.name, shape: t.shape, type: rawType, raw: new Uint8Array((t.shape.reduce((a, b) => a * b, 1) / ggmlTypeSize(rawType)!.blockSize) * ggmlTypeSize(rawType)!.typeSize) }
      : { name: t.name, shape: t.shape, type: t.type, raw: () => readGgufTensorRaw(f, t) })));
    return path;
  }
  const bytes = readFileSync(good);
  const cases: [string, RegExp][] = [
    [join(dir, 'magic.gguf'), /is not a GGUF file/],
    [join(dir, 'truncated.gguf'), /truncated|past the end/],
    [await variant('mamba.gguf', (m) => m.set('general.architecture', gguf.string('mamba'))), /holds a "mamba" model; AfD Studio reads GGUF files of the architectures llama, qwen2, gpt2/],
    [await variant('no-tokens.gguf', (m) => m.delete('tokenizer.ggml.tokens')), /tokenizer\.ggml\.tokens/],
    [await variant('iq4.gguf', () => undefined, 20), /is IQ4_NL, which AfD Studio cannot dequantize/],
  ];
  writeFileSync(cases[0][0], Buffer.concat([Buffer.from('GGML'), bytes.subarray(4)]));
  writeFileSync(cases[1][0], bytes.subarray(0, bytes.length - 1000));
  for (const [file, message] of cases) {
    const r = await afd(['models', 'import', file, '--db', db]);
    assert.equal(r.code, 1, `${file} was accepted`);
    // The job's progress line, then the reason: one line.
    assert.match(r.stderr, /\nafd models import: [^\n]+\n$/, `one sentence for ${file}`);
    assert.match(r.stderr, message);
  }
  assert.equal(json<unknown[]>(await afd(['models', 'list', '--json', '--db', db])).length, before, 'no model row from a bad file');
  assert.deepEqual(storeFiles(), filesBefore, 'no model files from a bad file');

  const imported = await afd(['models', 'import', good, '--name', 'tiny-gguf', '--db', db]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^Imported model #\d+ \("tiny-gguf"\): llama, [\d,]+ parameters in \d+ s\.\n$/);
  const out = join(dir, 'tiny-q8.gguf');
  const exported = await afd(['models', 'export', 'tiny-gguf', '--format', 'gguf', '--type', 'q8_0', '--out', out, '--db', db]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /^Exported to .*tiny-q8\.gguf \(GGUF, q8_0\): [\d,]+ parameters in \d+ s\.\n$/);
  const written = await openGguf(out);
  assert.equal(written.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.type, 8);
  assert.match((await afd(['models', 'export', 'tiny-gguf', '--format', 'gguf', '--out', out, '--db', db])).stderr, /Cannot export to .*tiny-q8\.gguf: it exists; choose a new file name\./);
});
