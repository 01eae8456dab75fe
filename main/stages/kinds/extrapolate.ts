// Stage `extrapolate` (DESIGN.md §2.6, no training): theta = theta_SFT + alpha (theta_SFT -
// theta_0), stepping past the SFT model along the direction fine-tuning moved it. Both
// models must have the same family and the same tensor shapes; the tokenizer and configs
// are the SFT model's.
import { join } from 'node:path';
import type { JsonObject } from '../../../db/json.ts';
import { number } from '../../schema/fields.ts';
import { loadModel, saveModel, type LoadedModel } from '../lm.ts';
import { modelDir, one, writeArtifactDetails, type Stage } from '../stage.ts';
import { parseSettings, ref, settingsSchema } from './common.ts';

export type ExtrapolateConfig = JsonObject & { sft: string; base: string; alpha: number };

/** sft + alpha (sft - base), tensor by tensor; throws a sentence when the models differ in shape. */
export function extrapolateWeights(sft: LoadedModel, base: LoadedModel, alpha: number): Map<string, Float32Array> {
  const differ = (why: string): Error => new Error(`Cannot extrapolate ${sft.dir} from ${base.dir}: ${why}; both models must be the same architecture (the SFT model fine-tuned from the base).`);
  if (sft.family.name !== base.family.name) throw differ(`one is ${sft.family.name}, the other ${base.family.name}`);
  const shapes = sft.family.paramShapes(sft.config), baseShapes = base.family.paramShapes(base.config);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const other = baseShapes.get(name);
    if (other === undefined) throw differ(`the base has no tensor ${name}`);
    if (other.length !== shape.length || other.some((d, i) => d !== shape[i])) throw differ(`${name} is [${shape.join(', ')}] in the SFT model and [${other.join(', ')}] in the base`);
    const a = sft.weights.get(name)!, b = base.weights.get(name)!;
    const w = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) w[i] = a[i] + alpha * (a[i] - b[i]);
    out.set(name, w);
  }
  if (baseShapes.size !== shapes.size) throw differ(`the base has ${baseShapes.size} tensors and the SFT model ${shapes.size}`);
  return out;
}

const SETTINGS = settingsSchema({ sft: ref('sft'), base: ref('pi0'), alpha: number(-100, 100, { default: 0.5 }) });

export const extrapolateStage: Stage<ExtrapolateConfig> = {
  kind: 'extrapolate',
  summary: 'parameter extrapolation past SFT: theta_SFT + alpha (theta_SFT - theta_0), no training',
  produces: 'model',
  inputs: { sft: { types: ['model'] }, base: { types: ['model'] } },

  settings: SETTINGS,
  parse: (raw, where) => parseSettings('extrapolate', SETTINGS, raw, where),

  async run(ctx, config, inputs) {
    const sft = await loadModel(modelDir(one(inputs, 'sft')));
    const base = await loadModel(modelDir(one(inputs, 'base')));
    await saveModel(join(ctx.dir, 'model'), sft, extrapolateWeights(sft, base, config.alpha));
    await writeArtifactDetails(ctx.dir, { type: 'model', from: 'extrapolate', alpha: config.alpha });
    ctx.progress(1, 1);
    return { status: 'done', summary: { alpha: config.alpha } };
  },
};
