// Importing Hugging Face folders without Python: what loads (base-model names, known
// buffers, a stored tied head, shards) and what is refused, each with one sentence that
// names the file and the tensor. Export refuses what it cannot write and leaves nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gpt2Defaults, gpt2Family } from '../models/gpt2.ts';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import type { ModelSpec } from '../models/index.ts';
import { fromFloat32, writeSafetensors, type NamedTensor } from '../runtime/safetensors.ts';
import { Rng } from '../train/rng.ts';
import ort from 'onnxruntime-node';
import { maxAbsDiff, testDecoder } from '../models/test-decoder.ts';
import { exportHfModel, exportInferenceOnnx, importHfModel } from './index.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';

const gpt: ModelSpec = { family: gpt2Family, config: gpt2Defaults({ vocabSize: 30, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 }) };
const llama: ModelSpec = { family: llamaFamily, config: llamaDefaults({ vocabSize: 30, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2, numKvHeads: 1, tieWordEmbeddings: true }) };

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('import', fn);

/** The model's tensors as F32 safetensors entries, by name. */
function tensorsOf(m: ModelSpec, seed = 0): Map<string, NamedTensor> {
  const w = m.family.init(m.config, new Rng(seed));
  const shapes = m.family.paramShapes(m.config);
  return new Map([...w].map(([n, a]) => [n, fromFloat32(a, shapes.get(n)!)]));
}

async function folder(dir: string, m: ModelSpec, tensors: Map<string, NamedTensor>, config: Record<string, unknown> = m.family.toHfConfig(m.config)): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

test('a folder loads with its generation config; F16 and BF16 become float32', () => withDir(async (dir) => {
  const t = tensorsOf(gpt);
  const wte = t.get('transformer.wte.weight')!;
  const values = new Float32Array(wte.data.buffer.slice(wte.data.byteOffset, wte.data.byteOffset + wte.data.byteLength));
  t.set('transformer.wte.weight', fromFloat32(values, wte.shape, 'BF16'));
  t.set('transformer.wpe.weight', fromFloat32(new Float32Array(8 * 8).fill(0.5), [8, 8], 'F16'));
  await folder(dir, gpt, t);
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, temperature: 0.7 }));
  const m = await importHfModel(dir);
  assert.equal(m.family, gpt2Family);
  assert.deepEqual(m.config, gpt.config);
  assert.deepEqual(m.generationConfig, { eos_token_id: 2, temperature: 0.7 });
  assert.deepEqual(m.storedDtypes, ['BF16', 'F16', 'F32']);
  assert.ok(m.weights.get('transformer.wpe.weight')!.every((x) => x === 0.5));
  const bf = m.weights.get('transformer.wte.weight')!;
  assert.ok(bf.every((x, i) => Math.abs(x - values[i]) <= Math.abs(values[i]) / 128));
}));

test('GPT2Model-style names (no "transformer." prefix), attention-mask buffers and a stored tied head are accepted', () => withDir(async (dir) => {
  const t = new Map<string, NamedTensor>();
  for (const [n, v] of tensorsOf(gpt)) t.set(n.replace(/^transformer\./, ''), v);
  t.set('h.0.attn.bias', fromFloat32(new Float32Array(64), [1, 1, 8, 8]));
  t.set('h.1.attn.masked_bias', fromFloat32(Float32Array.of(-1e4), []));
  await folder(join(dir, 'gpt'), gpt, t);
  const m = await importHfModel(join(dir, 'gpt'));
  assert.deepEqual([...m.weights.keys()].sort(), [...gpt2Family.paramShapes(gpt.config as never).keys()].sort());

  const lt = tensorsOf(llama);
  lt.set('lm_head.weight', lt.get('model.embed_tokens.weight')!);
  lt.set('model.layers.0.self_attn.rotary_emb.inv_freq', fromFloat32(new Float32Array(2), [2]));
  await folder(join(dir, 'llama'), llama, lt);
  assert.ok(!(await importHfModel(join(dir, 'llama'))).weights.has('lm_head.weight'));
}));

test('sharded checkpoints load; a wrong index is refused naming the shard and the tensor', () => withDir(async (dir) => {
  const t = tensorsOf(llama);
  const names = [...t.keys()];
  const half = Math.ceil(names.length / 2);
  const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  await mkdir(join(dir, 'ok'));
  await writeFile(join(dir, 'ok', 'config.json'), JSON.stringify(llamaFamily.toHfConfig(llama.config as never)));
  const weightMap: Record<string, string> = {};
  for (const [k, f] of files.entries()) {
    const part = names.slice(k * half, (k + 1) * half);
    await writeSafetensors(join(dir, 'ok', f), new Map(part.map((n) => [n, t.get(n)!])));
    for (const n of part) weightMap[n] = f;
  }
  await writeFile(join(dir, 'ok', 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  assert.equal((await importHfModel(join(dir, 'ok'))).weights.size, names.length);

  await writeFile(join(dir, 'ok', 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, [names[0]]: files[1] } }));
  await assert.rejects(importHfModel(join(dir, 'ok')), new RegExp(`index.json says tensor "${names[0]}" is in ${files[1]}, but that file has no such tensor`));
  await writeFile(join(dir, 'ok', 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, [names[0]]: 'model-00003-of-00002.safetensors' } }));
  await assert.rejects(importHfModel(join(dir, 'ok')), /lists model-00003-of-00002.safetensors, which is missing from/);
}));

test('a missing tensor is refused naming it', () => withDir(async (dir) => {
  const t = tensorsOf(gpt);
  t.delete('transformer.h.1.mlp.c_fc.bias');
  await folder(dir, gpt, t);
  await assert.rejects(importHfModel(dir), /lacks tensor "transformer.h.1.mlp.c_fc.bias", which a gpt2 model with this config.json needs/);
}));

test('an extra tensor is refused naming it and its file', () => withDir(async (dir) => {
  const t = tensorsOf(gpt);
  t.set('transformer.h.0.attn.q_norm.weight', fromFloat32(new Float32Array(8), [8]));
  await folder(dir, gpt, t);
  await assert.rejects(importHfModel(dir), /model.safetensors has tensor "transformer.h.0.attn.q_norm.weight", which a gpt2 model with this config.json does not have/);
}));

test('a tensor of the wrong shape is refused naming it, the file and both shapes', () => withDir(async (dir) => {
  const t = tensorsOf(llama);
  t.set('model.layers.0.self_attn.k_proj.weight', fromFloat32(new Float32Array(8 * 8), [8, 8]));
  await folder(dir, llama, t);
  await assert.rejects(importHfModel(dir), /tensor "model.layers.0.self_attn.k_proj.weight" in .*model.safetensors has shape \[8, 8\], but config.json implies \[4, 8\]/);
}));

test('a non-float weight is refused', () => withDir(async (dir) => {
  const t = tensorsOf(gpt);
  t.set('transformer.ln_f.bias', { dtype: 'I32', shape: [8], data: new Uint8Array(32) });
  await folder(dir, gpt, t);
  await assert.rejects(importHfModel(dir), /tensor "transformer.ln_f.bias" in .* is I32; model weights must be F32, F16, BF16 or F64/);
}));

test('a truncated or corrupt safetensors file is refused naming the file', () => withDir(async (dir) => {
  await folder(dir, gpt, tensorsOf(gpt));
  const path = join(dir, 'model.safetensors');
  const bytes = await readFile(path);
  await truncate(path, bytes.byteLength - 10);
  await assert.rejects(importHfModel(dir), /model.safetensors has data_offsets .* beyond the .* bytes of data in the file \(the file is truncated or corrupt\)/);
  await writeFile(path, bytes.subarray(0, 6));
  await assert.rejects(importHfModel(dir), /model.safetensors is not a safetensors file: it is 6 bytes long/);
  await writeFile(path, Buffer.concat([bytes.subarray(0, 8), Buffer.from('#'), bytes.subarray(9)])); // '{' of the header overwritten
  await assert.rejects(importHfModel(dir), /model.safetensors is corrupt or not a safetensors file: its header is not valid JSON/);
}));

test('an unknown architecture is refused naming config.json and the architecture', () => withDir(async (dir) => {
  await folder(dir, gpt, tensorsOf(gpt), { model_type: 'mistral', architectures: ['MistralForCausalLM'] });
  await assert.rejects(importHfModel(dir), /config.json: This checkpoint's architecture \(model_type "mistral", architectures MistralForCausalLM\) is not supported/);
}));

test('a folder without config.json, with a corrupt one, or with only PyTorch weights is refused', () => withDir(async (dir) => {
  await assert.rejects(importHfModel(dir), /has no config.json; a Hugging Face model folder needs one/);
  await writeFile(join(dir, 'config.json'), '{"model_type": "gpt2",');
  await assert.rejects(importHfModel(dir), /config.json is not valid JSON .*the model configuration is corrupt/);
  await writeFile(join(dir, 'config.json'), JSON.stringify(gpt2Family.toHfConfig(gpt.config as never)));
  await writeFile(join(dir, 'pytorch_model.bin'), 'pickle');
  await assert.rejects(importHfModel(dir), /PyTorch pickle weights .* convert the model to safetensors first/);
}));

test('export refuses a non-empty target, unmerged adapters and missing weights, and leaves nothing behind', () => withDir(async (dir) => {
  const weights = gpt.family.init(gpt.config, new Rng(0));
  await mkdir(join(dir, 'full'));
  await writeFile(join(dir, 'full', 'keep.txt'), 'x');
  await assert.rejects(exportHfModel(join(dir, 'full'), { ...gpt, weights }), /it exists and is not an empty folder/);
  const withAdapter = new Map([...weights, ['transformer.h.0.attn.c_attn.lora_A', new Float32Array(16)]]);
  await assert.rejects(exportHfModel(join(dir, 'a'), { ...gpt, weights: withAdapter }), /"transformer.h.0.attn.c_attn.lora_A" is not a parameter .* merge the LoRA adapters/);
  const partial = new Map(weights);
  partial.delete('transformer.ln_f.weight');
  await assert.rejects(exportHfModel(join(dir, 'b'), { ...gpt, weights: partial }), /tensor "transformer.ln_f.weight" is missing/);
  assert.deepEqual((await readdir(dir)).sort(), ['full']);
  // An empty target folder is fine, and so is exporting in F16.
  await mkdir(join(dir, 'empty'));
  await exportHfModel(join(dir, 'empty'), { ...gpt, weights, dtype: 'F16' });
  const back = await importHfModel(join(dir, 'empty'));
  assert.deepEqual(back.storedDtypes, ['F16']);
  assert.equal(JSON.parse(await readFile(join(dir, 'empty', 'config.json'), 'utf8')).torch_dtype, 'float16');
  assert.deepEqual((await readdir(dir)).sort(), ['empty', 'full']);
}));

test('export copies the tokenizer files of the source folder and writes the generation config', () => withDir(async (dir) => {
  const weights = llama.family.init(llama.config, new Rng(0));
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'tokenizer.json'), '{"model": {}}');
  await writeFile(join(dir, 'src', 'tokenizer_config.json'), '{"chat_template": "x"}');
  await writeFile(join(dir, 'src', 'notes.txt'), 'not copied');
  await exportHfModel(join(dir, 'out'), { ...llama, weights, tokenizerFrom: join(dir, 'src'), generationConfig: { eos_token_id: 2 }, baseConfig: { bos_token_id: 1, rope_parameters: { rope_type: 'yarn' } } });
  assert.deepEqual((await readdir(join(dir, 'out'))).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const config = JSON.parse(await readFile(join(dir, 'out', 'config.json'), 'utf8'));
  // Keys of the source config survive, except those the family writes itself (a stale rope block would contradict it).
  assert.equal(config.bos_token_id, 1);
  assert.equal(config.rope_parameters, undefined);
  assert.equal(config.model_type, 'llama');
}));

test('the inference ONNX export, with its weights in an external data file, runs by path and gives the graph\'s logits', () => withDir(async (dir) => {
  const weights = gpt.family.init(gpt.config, new Rng(5));
  const path = join(dir, 'model.onnx');
  const { externalData } = await exportInferenceOnnx(path, { ...gpt, weights, externalDataAbove: 0 });
  assert.equal(externalData, join(dir, 'model.onnx.data'));
  const tokens = [[1, 2, 3, 29], [7, 7, 0, 4]];
  const d = await testDecoder(gpt, weights);
  const want = (await d.run(tokens)).logits;
  await d.release();
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  try {
    const r = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(tokens.flat(), BigInt), [2, 4]) });
    assert.ok(maxAbsDiff(r.logits.data as Float32Array, want) <= 1e-6);
  } finally {
    await session.release();
  }
}));
