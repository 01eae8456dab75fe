// A model as a GGUF file that llama.cpp, LM Studio, Ollama and transformers run: the
// metadata llama.cpp's converter writes for its architecture, the tokenizer and chat
// template, and the weights in llama.cpp's names and layouts (architecture.ts), stored as
// F32, F16 or Q8_0. As llama.cpp does, vectors (norms, biases) stay F32 and only matrices
// take the chosen type; a matrix whose rows do not split into Q8_0's blocks of 32 is F16.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelSpec } from '../../models/index.ts';
import type { Gpt2Config } from '../../models/gpt2.ts';
import type { LlamaConfig } from '../../models/llama.ts';
import { checkWeights } from '../hf-export.ts';
import { ggufTensorName, layoutChange, toGgufLayout, type GgufArchName } from './architecture.ts';
import { GgmlType } from './quants.ts';
import { gguf, type GgufTypedValue } from './values.ts';
import { ggufTokenizerMetadata } from './tokenizer.ts';
import { writeGguf, type GgufTensorToWrite } from './writer.ts';

export type GgufExportType = 'f32' | 'f16' | 'q8_0';

export interface GgufExportOptions<C> extends ModelSpec<C> {
  /** float32 weights by Hugging Face name (LoRA adapters merged first). */
  weights: ReadonlyMap<string, Float32Array>;
  /** The folder whose tokenizer.json and tokenizer_config.json (and chat_template.jinja) describe the tokenizer. */
  tokenizerFrom: string;
  type: GgufExportType;
  /** general.name. */
  name?: string;
  /** Called as each tensor is written. */
  onProgress?: (done: number, total: number) => void;
}

// llama.cpp's LLAMA_FTYPE values for general.file_type.
const FILE_TYPE: Readonly<Record<GgufExportType, number>> = { f32: 0, f16: 1, q8_0: 7 };
const MATRIX_TYPE: Readonly<Record<GgufExportType, GgmlType.F32 | GgmlType.F16 | GgmlType.Q8_0>> = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0 };

function archOf(spec: ModelSpec): GgufArchName {
  if (spec.family.name === 'gpt2') return 'gpt2';
  return (spec.config as LlamaConfig).modelType === 'qwen2' ? 'qwen2' : 'llama';
}

/** The architecture's hyperparameters under llama.cpp's keys and types. */
function architectureMetadata(arch: GgufArchName, spec: ModelSpec): [string, GgufTypedValue][] {
  const k = (key: string): string => `${arch}.${key}`;
  if (arch === 'gpt2') {
    const c = spec.config as Gpt2Config;
    if (c.activation !== 'gelu_new') throw new Error(`Cannot write a GGUF: llama.cpp's GPT-2 uses GPT-2's tanh GELU, and this model uses "${c.activation}".`);
    return [
      [k('context_length'), gguf.u32(c.nPositions)], [k('embedding_length'), gguf.u32(c.nEmbd)],
      [k('feed_forward_length'), gguf.u32(c.nInner)], [k('block_count'), gguf.u32(c.nLayer)],
      [k('attention.head_count'), gguf.u32(c.nHead)], [k('attention.layer_norm_epsilon'), gguf.f32(c.layerNormEps)],
    ];
  }
  const c = spec.config as LlamaConfig;
  const out: [string, GgufTypedValue][] = [
    [k('context_length'), gguf.u32(c.maxPositions)], [k('embedding_length'), gguf.u32(c.hiddenSize)],
    [k('block_count'), gguf.u32(c.numLayers)], [k('feed_forward_length'), gguf.u32(c.intermediateSize)],
    [k('rope.dimension_count'), gguf.u32(c.headDim)], [k('attention.head_count'), gguf.u32(c.numHeads)],
    [k('attention.head_count_kv'), gguf.u32(c.numKvHeads)], [k('rope.freq_base'), gguf.f32(c.ropeTheta)],
    [k('attention.layer_norm_rms_epsilon'), gguf.f32(c.rmsNormEps)], [k('vocab_size'), gguf.u32(c.vocabSize)],
  ];
  if (c.headDim * c.numHeads !== c.hiddenSize) out.push([k('attention.key_length'), gguf.u32(c.headDim)], [k('attention.value_length'), gguf.u32(c.headDim)]);
  if (c.ropeScaling.type === 'linear') out.push([k('rope.scaling.type'), gguf.string('linear')], [k('rope.scaling.factor'), gguf.f32(c.ropeScaling.factor)]);
  return out;
}

/** Llama 3's rotary scaling as llama.cpp stores it: each frequency's divisor, as the tensor rope_freqs.weight. */
function ropeFreqs(c: LlamaConfig, invFreq: (c: LlamaConfig) => Float32Array): Float32Array {
  const plain = invFreq({ ...c, ropeScaling: { type: 'default' } }), scaled = invFreq(c);
  return Float32Array.from(plain, (f, i) => f / scaled[i]);
}

/** Writes the model as a GGUF file at `path` (atomically; tensors converted one at a time). */
export async function exportGguf<C>(path: string, o: GgufExportOptions<C>): Promise<void> {
  const shapes = checkWeights(o, o.weights, `write ${path}`);
  const spec = o as unknown as ModelSpec;
  const arch = archOf(spec);
  const readJson = async (file: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(o.tokenizerFrom, file), 'utf8')) as Record<string, unknown>;
  const tokenizerJson = await readJson('tokenizer.json').catch((err: Error) => {
    throw new Error(`Cannot write a GGUF: ${o.tokenizerFrom} has no readable tokenizer.json (${err.message}); the GGUF must carry the tokenizer.`, { cause: err });
  });
  const tokenizerConfig = await readJson('tokenizer_config.json').catch((): Record<string, unknown> => ({}));
  const template = await readFile(join(o.tokenizerFrom, 'chat_template.jinja'), 'utf8').catch(() => undefined);

  const metadata = new Map<string, GgufTypedValue>([
    ['general.architecture', gguf.string(arch)],
    ['general.name', gguf.string(o.name ?? 'model')],
    ['general.file_type', gguf.u32(FILE_TYPE[o.type])],
    ...(o.type === 'q8_0' ? [['general.quantization_version', gguf.u32(2)] as [string, GgufTypedValue]] : []),
    ...architectureMetadata(arch, spec),
  ]);
  for (const [key, value] of ggufTokenizerMetadata(tokenizerJson, tokenizerConfig, template)) metadata.set(key, value);

  const c = spec.config as LlamaConfig;
  const heads = arch === 'gpt2' ? 0 : c.numHeads, kvHeads = arch === 'gpt2' ? 0 : c.numKvHeads;
  const tensors: GgufTensorToWrite[] = [];
  if (arch !== 'gpt2' && c.ropeScaling.type === 'llama3') {
    const { ropeInvFreq } = await import('../../models/llama.ts');
    const factors = ropeFreqs(c, ropeInvFreq);
    tensors.push({ name: 'rope_freqs.weight', shape: [factors.length], type: GgmlType.F32, data: () => factors });
  }
  for (const [hf, hfShape] of shapes) {
    const name = ggufTensorName(arch, hf);
    if (!name) throw new Error(`Cannot write a GGUF: "${hf}" has no llama.cpp name for a ${arch} model.`);
    const change = layoutChange(arch, hf, heads, kvHeads);
    const storedShape = change.kind === 'transpose' ? [hfShape[1], hfShape[0]] : hfShape;
    const rowLength = storedShape[storedShape.length - 1];
    let type: GgufTensorToWrite['type'] = hfShape.length < 2 ? GgmlType.F32 : MATRIX_TYPE[o.type];
    if (type === GgmlType.Q8_0 && rowLength % 32 !== 0) type = GgmlType.F16;
    tensors.push({ name, shape: storedShape, type, data: () => toGgufLayout(change, o.weights.get(hf)!, hfShape).data });
  }
  let done = 0;
  for (const t of tensors) {
    const produce = t.data as () => Float32Array;
    t.data = () => {
      const values = produce();
      o.onProgress?.(++done, tensors.length);
      return values;
    };
  }
  await writeGguf(path, metadata, tensors);
}
