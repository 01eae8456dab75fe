// LoRA (Hu et al. 2021): a frozen projection W plus a trained low-rank update
// scale * A B, with A [in, r], B [r, out] and scale = alpha / r. B starts at zero, so
// an adapted model starts exactly at its base. The forward pass (layers.ts loraLinear)
// adds the update wherever `${prefix}.lora_A` / `.lora_B` are among the params; this file
// names, shapes, initializes and merges them.

import * as T from '../ir/index.ts';
import type { Rng } from '../train/rng.ts';
import type { MappedWeights } from '../runtime/safetensors-index.ts';
import type { LinearInfo, ModelFamily } from './family.ts';
import { loraNames } from './layers.ts';

export interface LoraSpec {
  rank: number;
  alpha: number;
  /**
   * Which projections get adapters: 'attention', 'mlp', or names matched against the
   * end of a projection's prefix ('q_proj', 'v_proj', 'attn.c_attn'). Default: all
   * attention and MLP projections.
   */
  targets?: readonly string[];
}

export const loraScale = (l: LoraSpec): number => l.alpha / l.rank;

/** The projections that get adapters. */
export function loraTargets<C>(family: ModelFamily<C>, config: C, l: LoraSpec): LinearInfo[] {
  if (!Number.isInteger(l.rank) || l.rank < 1) throw new Error(`LoRA rank must be a positive integer, got ${l.rank}`);
  if (!(l.alpha > 0)) throw new Error(`LoRA alpha must be positive, got ${l.alpha}`);
  const all = family.linears(config);
  const targets = l.targets ?? ['attention', 'mlp'];
  const chosen = all.filter((x) => targets.some((t) => t === x.kind || x.prefix === t || x.prefix.endsWith(`.${t}`)));
  const unmatched = targets.filter((t) => t !== 'attention' && t !== 'mlp' && !all.some((x) => x.prefix === t || x.prefix.endsWith(`.${t}`)));
  if (unmatched.length > 0 || chosen.length === 0) {
    const names = [...new Set(all.map((x) => x.prefix.split('.').slice(-2).join('.')))].join(', ');
    throw new Error(`LoRA targets ${JSON.stringify(unmatched.length ? unmatched : targets)} match no projection of this ${family.name} model (it has ${names}; or use 'attention' / 'mlp').`);
  }
  return chosen;
}

/** Adapter shapes by name: `${prefix}.lora_A` [in, r] and `${prefix}.lora_B` [r, out]. */
export function loraParamShapes<C>(family: ModelFamily<C>, config: C, l: LoraSpec): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const x of loraTargets(family, config, l)) {
    const n = loraNames(x.prefix);
    out.set(n.a, [x.in, l.rank]).set(n.b, [l.rank, x.out]);
  }
  return out;
}

/**
 * A uniform in +-1/sqrt(in) (PyTorch's kaiming_uniform_ with a = sqrt(5), what PEFT
 * uses), B zeros: the adapted model starts equal to the base one.
 */
export function loraInit(shapes: ReadonlyMap<string, number[]>, rng: Rng): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, [rows, cols]] of shapes) {
    const a = new Float32Array(rows * cols);
    if (name.endsWith('.lora_A')) {
      const bound = 1 / Math.sqrt(rows);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    }
    out.set(name, a);
  }
  return out;
}

/**
 * The graph leaves of a LoRA fine-tune: base weights as frozen initializers (they never
 * leave the session), adapters as the only trainable parameters. Pass `params` and
 * `loraScale(l)` to the family's forward, `trainable` and `frozen` to buildTrainStep.
 * With mapped base weights (checkpoint/hf-import.ts mapHfModel) the initializers
 * reference the model's files, which ONNX Runtime maps instead of holding a copy: pass
 * the trainer `external` too.
 */
export function loraTraining<C>(family: ModelFamily<C>, config: C, base: ReadonlyMap<string, Float32Array> | MappedWeights, l: LoraSpec): {
  params: Map<string, T.Value>;
  trainable: T.Value[];
  frozen: Map<T.Value, Float32Array | T.ExternalTensor>;
  external?: { dir: string; identity: string };
} {
  const params = new Map<string, T.Value>();
  const frozen = new Map<T.Value, Float32Array | T.ExternalTensor>();
  const mapped = base instanceof Map ? undefined : (base as MappedWeights);
  for (const [name, shape] of family.paramShapes(config)) {
    const data = mapped ? mapped.tensors.get(name) : (base as ReadonlyMap<string, Float32Array>).get(name);
    if (!data) throw new Error(`LoRA: the base weights have no tensor ${name}`);
    const v = T.param(name, shape);
    params.set(name, v);
    frozen.set(v, data);
  }
  const trainable: T.Value[] = [];
  for (const [name, shape] of loraParamShapes(family, config, l)) {
    const v = T.param(name, shape);
    params.set(name, v);
    trainable.push(v);
  }
  return { params, trainable, frozen, ...(mapped ? { external: { dir: mapped.dir, identity: mapped.identity } } : {}) };
}

/**
 * Base weights with the adapters folded in: W + scale A B for an [in, out] weight,
 * W + scale (A B)^T for an [out, in] one. The result has exactly the base parameters,
 * ready for export. Products are summed in float64.
 */
export function mergeLora<C>(
  weights: ReadonlyMap<string, Float32Array>,
  adapters: ReadonlyMap<string, Float32Array>,
  family: ModelFamily<C>,
  config: C,
  l: LoraSpec,
): Map<string, Float32Array> {
  const scale = loraScale(l);
  const out = new Map(weights);
  const used = new Set<string>();
  for (const x of loraTargets(family, config, l)) {
    const n = loraNames(x.prefix);
    const a = adapters.get(n.a), b = adapters.get(n.b), w = weights.get(`${x.prefix}.weight`);
    if (!a || !b) throw new Error(`mergeLora: the adapters of ${x.prefix} are missing (${n.a}, ${n.b})`);
    if (!w) throw new Error(`mergeLora: the base weights have no tensor ${x.prefix}.weight`);
    const r = l.rank;
    if (a.length !== x.in * r || b.length !== r * x.out) throw new Error(`mergeLora: the adapters of ${x.prefix} do not have shapes [${x.in}, ${r}] and [${r}, ${x.out}]`);
    const merged = Float32Array.from(w);
    for (let i = 0; i < x.in; i++) {
      for (let o = 0; o < x.out; o++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += a[i * r + k] * b[k * x.out + o];
        // [in, out] stores (i, o) at i*out + o; [out, in] at o*in + i.
        merged[x.layout === 'in_out' ? i * x.out + o : o * x.in + i] += scale * s;
      }
    }
    out.set(`${x.prefix}.weight`, merged);
    used.add(n.a).add(n.b);
  }
  const stray = [...adapters.keys()].find((k) => !used.has(k));
  if (stray) throw new Error(`mergeLora: adapter ${stray} does not belong to the targets ${JSON.stringify(l.targets ?? ['attention', 'mlp'])}`);
  return out;
}
