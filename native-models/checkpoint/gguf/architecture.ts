// How GGUF architectures map onto the engine's model families: the config.json that a
// GGUF's metadata describes, each tensor's Hugging Face name, and the layout changes that
// llama.cpp's converter (convert_hf_to_gguf.py) made, undone on import and redone on
// export: Llama's q/k rows are interleaved per head for llama.cpp's rotary embedding, and
// GPT-2's Conv1D weights ([in, out]) are stored transposed as [out, in]. Qwen2 uses the
// half-split rotary Hugging Face uses, so its rows are stored as they are.

import type { GgufValue } from './reader.ts';

export type GgufArchName = 'llama' | 'qwen2' | 'gpt2';
export const GGUF_ARCHITECTURES: readonly GgufArchName[] = ['llama', 'qwen2', 'gpt2'];

// ---------------------------------------------------------------- metadata

/** Typed reads of GGUF metadata whose errors name the key and the file. */
export class GgufMeta {
  constructor(readonly map: ReadonlyMap<string, GgufValue>, readonly what: string) {}

  has(key: string): boolean {
    return this.map.has(key);
  }

  private fail(key: string, want: string): never {
    const v = this.map.get(key);
    const got = v === undefined ? 'it is missing' : `it is ${typeof v === 'bigint' ? v.toString() : JSON.stringify(v)?.slice(0, 80)}`;
    throw new Error(`${this.what}: metadata "${key}" must be ${want}, but ${got}; the file is incomplete or not a model this engine reads.`);
  }

  /** A non-negative integer (u8..u64 in the file). */
  int(key: string, fallback?: number): number {
    const v = this.map.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) this.fail(key, 'a non-negative integer');
    return n;
  }

  num(key: string, fallback?: number): number {
    const v = this.map.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number');
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.map.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }
}

/**
 * A float32 metadata value as the short decimal it was written from (1e-5 is stored as
 * 9.999999747e-6): the same float32 in every computation, and a readable config.json.
 */
export function shortFloat32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === Math.fround(x)) return y;
  }
  return x;
}

// ---------------------------------------------------------------- tensor names

type NameRule = [hf: RegExp, gguf: string];

// Hugging Face name -> GGUF name; `$1` is the block index. Biases follow their weights.
const LLAMA_NAMES: NameRule[] = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'],
  [/^model\.norm\.weight$/, 'output_norm.weight'],
  [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$/, 'blk.$1.attn_q.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$/, 'blk.$1.attn_k.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$/, 'blk.$1.attn_v.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)$/, 'blk.$1.attn_output.$2'],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.(weight|bias)$/, 'blk.$1.ffn_gate.$2'],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.(weight|bias)$/, 'blk.$1.ffn_up.$2'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.(weight|bias)$/, 'blk.$1.ffn_down.$2'],
];

const GPT2_NAMES: NameRule[] = [
  [/^transformer\.wte\.weight$/, 'token_embd.weight'],
  [/^transformer\.wpe\.weight$/, 'position_embd.weight'],
  [/^transformer\.ln_f\.(weight|bias)$/, 'output_norm.$1'],
  [/^lm_head\.weight$/, 'output.weight'],
  [/^transformer\.h\.(\d+)\.ln_1\.(weight|bias)$/, 'blk.$1.attn_norm.$2'],
  [/^transformer\.h\.(\d+)\.ln_2\.(weight|bias)$/, 'blk.$1.ffn_norm.$2'],
  [/^transformer\.h\.(\d+)\.attn\.c_attn\.(weight|bias)$/, 'blk.$1.attn_qkv.$2'],
  [/^transformer\.h\.(\d+)\.attn\.c_proj\.(weight|bias)$/, 'blk.$1.attn_output.$2'],
  [/^transformer\.h\.(\d+)\.mlp\.c_fc\.(weight|bias)$/, 'blk.$1.ffn_up.$2'],
  [/^transformer\.h\.(\d+)\.mlp\.c_proj\.(weight|bias)$/, 'blk.$1.ffn_down.$2'],
];

const NAMES: Readonly<Record<GgufArchName, NameRule[]>> = { llama: LLAMA_NAMES, qwen2: LLAMA_NAMES, gpt2: GPT2_NAMES };

/** The GGUF name of a Hugging Face parameter name, or undefined when the architecture has none. */
export function ggufTensorName(arch: GgufArchName, hfName: string): string | undefined {
  for (const [re, gguf] of NAMES[arch]) {
    const m = re.exec(hfName);
    if (m) return gguf.replace(/\$(\d)/g, (_, i: string) => m[Number(i)]);
  }
  return undefined;
}

// ---------------------------------------------------------------- layouts

/** What the converter did to a tensor's layout; `heads` is the row-group count of the permutation. */
export type LayoutChange = { kind: 'none' } | { kind: 'transpose' } | { kind: 'rope-interleave'; heads: number };

/** The layout change of one Hugging Face parameter in a GGUF of `arch`. */
export function layoutChange(arch: GgufArchName, hfName: string, numHeads: number, numKvHeads: number): LayoutChange {
  if (arch === 'gpt2') return /\.(c_attn|c_proj|c_fc)\.weight$/.test(hfName) ? { kind: 'transpose' } : { kind: 'none' };
  // llama.cpp's Llama rotary rotates adjacent pairs; Hugging Face's rotates the two halves.
  if (arch === 'llama' && /\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return { kind: 'rope-interleave', heads: numHeads };
  if (arch === 'llama' && /\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return { kind: 'rope-interleave', heads: numKvHeads };
  return { kind: 'none' };
}

/**
 * Moves rows within each head between Hugging Face's order (row `half * d + i` of a head
 * of 2d rows) and llama.cpp's (row `2i + half`): `toGguf` true interleaves, false undoes it.
 * Works for weights [rows, cols] and biases [rows] (cols = 1).
 */
export function permuteRopeRows(data: Float32Array, rows: number, heads: number, toGguf: boolean): Float32Array {
  const cols = data.length / rows, headRows = rows / heads, d = headRows / 2;
  if (!Number.isInteger(cols) || !Number.isInteger(d)) throw new Error(`Cannot permute ${rows} rows into ${heads} heads of an even size.`);
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < d; i++) {
        const hfRow = h * headRows + half * d + i, ggufRow = h * headRows + 2 * i + half;
        const [from, to] = toGguf ? [hfRow, ggufRow] : [ggufRow, hfRow];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** A row-major [rows, cols] matrix transposed. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** A tensor read from a GGUF (row-major shape as stored) in the Hugging Face layout of `hfShape`. */
export function toHfLayout(change: LayoutChange, data: Float32Array, hfShape: readonly number[]): Float32Array {
  if (change.kind === 'transpose') return transpose2d(data, hfShape[1], hfShape[0]);
  if (change.kind === 'rope-interleave') return permuteRopeRows(data, hfShape[0], change.heads, false);
  return data;
}

/** A Hugging Face tensor in the GGUF layout, with its row-major shape there. */
export function toGgufLayout(change: LayoutChange, data: Float32Array, hfShape: readonly number[]): { data: Float32Array; shape: number[] } {
  if (change.kind === 'transpose') return { data: transpose2d(data, hfShape[0], hfShape[1]), shape: [hfShape[1], hfShape[0]] };
  if (change.kind === 'rope-interleave') return { data: permuteRopeRows(data, hfShape[0], change.heads, true), shape: [...hfShape] };
  return { data, shape: [...hfShape] };
}

// ---------------------------------------------------------------- config

const architectureOf = (meta: GgufMeta): GgufArchName => {
  const arch = meta.str('general.architecture');
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new Error(`${meta.what} holds a "${arch}" model; AfD Studio reads GGUF files of the architectures ${GGUF_ARCHITECTURES.join(', ')}.`);
  }
  return arch as GgufArchName;
};

export { architectureOf as ggufArchitecture };

/**
 * Llama 3.1's rotary scaling from the `rope_freqs.weight` factors llama.cpp stores instead
 * of the config (each inverse frequency is divided by its factor). The factors follow from
 * (factor, low, high, original context); Meta's released models all use low 1, high 4 and an
 * original context of 8192, so those are tried and the result must reproduce every factor.
 */
export function llama3ScalingFromFactors(factors: Float32Array, headDim: number, theta: number): Record<string, unknown> | undefined {
  const factor = Math.max(...factors);
  const candidate = { rope_type: 'llama3', factor, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const lowWavelen = 8192 / 1, highWavelen = 8192 / 4;
  for (let i = 0; i < factors.length; i++) {
    const f = 1 / theta ** ((2 * i) / headDim), wavelen = (2 * Math.PI) / f;
    let scaled: number;
    if (wavelen < highWavelen) scaled = f;
    else if (wavelen > lowWavelen) scaled = f / factor;
    else {
      const smooth = (8192 / wavelen - 1) / (4 - 1);
      scaled = (1 - smooth) * (f / factor) + smooth * f;
    }
    if (Math.abs(f / scaled - factors[i]) > 1e-4 * factors[i]) return undefined;
  }
  return candidate;
}

/**
 * The Hugging Face config.json of a GGUF: from its metadata, with what the metadata may
 * omit read off the tensor table (`shapes`: GGUF name -> row-major shape). `ropeFactors`
 * are the values of `rope_freqs.weight` when the file has that tensor.
 */
export function hfConfigFromGguf(metaMap: ReadonlyMap<string, GgufValue>, shapes: ReadonlyMap<string, readonly number[]>, what: string, ropeFactors?: Float32Array): Record<string, unknown> {
  const meta = new GgufMeta(metaMap, what);
  const arch = architectureOf(meta);
  const key = (k: string): string => `${arch}.${k}`;
  const embd = shapes.get('token_embd.weight');
  if (!embd) throw new Error(`${what} has no token_embd.weight tensor; it is not a complete ${arch} model.`);
  const vocabSize = embd[0];
  const hidden = meta.int(key('embedding_length'));
  const tied = !shapes.has('output.weight');
  const ids: Record<string, unknown> = {};
  for (const [k, hf] of [['bos_token_id', 'bos_token_id'], ['eos_token_id', 'eos_token_id'], ['padding_token_id', 'pad_token_id']] as const) {
    if (meta.has(`tokenizer.ggml.${k}`)) ids[hf] = meta.int(`tokenizer.ggml.${k}`);
  }
  const name = meta.has('general.name') ? { _name_or_path: meta.str('general.name') } : {};

  if (arch === 'gpt2') {
    return {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', ...name,
      vocab_size: vocabSize, n_positions: meta.int(key('context_length')), n_embd: hidden,
      n_layer: meta.int(key('block_count')), n_head: meta.int(key('attention.head_count')),
      n_inner: meta.int(key('feed_forward_length'), 4 * hidden),
      layer_norm_epsilon: shortFloat32(meta.num(key('attention.layer_norm_epsilon'), 1e-5)),
      activation_function: 'gelu_new', tie_word_embeddings: tied, ...ids,
    };
  }

  const heads = meta.int(key('attention.head_count'));
  const headDim = meta.int(key('attention.key_length'), meta.int(key('rope.dimension_count'), hidden / heads));
  const theta = shortFloat32(meta.num(key('rope.freq_base'), 10000));
  let ropeScaling: Record<string, unknown> | undefined;
  const scalingType = meta.str(key('rope.scaling.type'), 'none');
  if (scalingType === 'linear') ropeScaling = { rope_type: 'linear', factor: shortFloat32(meta.num(key('rope.scaling.factor'))) };
  else if (scalingType !== 'none') throw new Error(`${what} uses "${scalingType}" rotary scaling, which AfD Studio does not implement (it runs none, linear and Llama 3's).`);
  if (ropeFactors && ropeFactors.some((f) => f !== 1)) {
    ropeScaling = llama3ScalingFromFactors(ropeFactors, headDim, theta);
    if (!ropeScaling) throw new Error(`${what} scales its rotary frequencies (rope_freqs.weight) in a way that is not Llama 3's; AfD Studio cannot run it faithfully.`);
  }
  const attentionBias = shapes.has('blk.0.attn_q.bias');
  return {
    architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'], model_type: arch, ...name,
    vocab_size: vocabSize, hidden_size: hidden, intermediate_size: meta.int(key('feed_forward_length')),
    num_hidden_layers: meta.int(key('block_count')), num_attention_heads: heads,
    num_key_value_heads: meta.int(key('attention.head_count_kv'), heads), head_dim: headDim,
    max_position_embeddings: meta.int(key('context_length')),
    rms_norm_eps: shortFloat32(meta.num(key('attention.layer_norm_rms_epsilon'), 1e-6)),
    rope_theta: theta, ...(ropeScaling ? { rope_scaling: ropeScaling } : {}),
    tie_word_embeddings: tied, ...(arch === 'llama' ? { attention_bias: attentionBias, mlp_bias: shapes.has('blk.0.ffn_up.bias') } : {}),
    hidden_act: 'silu', ...ids,
  };
}
