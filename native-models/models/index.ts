// The model families and the registry that picks one for a Hugging Face config.json.

import type { FamilyName, ModelFamily } from './family.ts';
import { gpt2Family } from './gpt2.ts';
import { llamaFamily } from './llama.ts';

export type * from './family.ts';
export { gpt2Family, type Gpt2Config } from './gpt2.ts';
export { llamaFamily, type LlamaConfig } from './llama.ts';

/** A family with one of its configs; `family.forward(config, ...)` and so on. */
export interface ModelSpec<C = unknown> {
  family: ModelFamily<C>;
  config: C;
}

/** model_type -> family; every Llama-like listed here is a plain Llama to this engine. */
const BY_MODEL_TYPE: Readonly<Record<string, FamilyName>> = { gpt2: 'gpt2', llama: 'llama', qwen2: 'llama' };
const BY_ARCHITECTURE: Readonly<Record<string, string>> = { GPT2LMHeadModel: 'gpt2', LlamaForCausalLM: 'llama', Qwen2ForCausalLM: 'qwen2' };
const SUPPORTED = 'GPT-2 (model_type "gpt2"), Llama and Llama-like models such as SmolLM ("llama") and Qwen2 ("qwen2"), as causal language models';

// Family methods take their config as a method parameter, so a ModelFamily<Gpt2Config>
// is a ModelFamily<unknown> to TypeScript; familyOf pairs each with its own config.
const FAMILIES: Readonly<Record<FamilyName, ModelFamily<unknown>>> = {
  gpt2: gpt2Family,
  llama: llamaFamily,
};

/**
 * The family and config of a Hugging Face config.json object, chosen by `model_type`
 * (or `architectures` when it is missing). Anything else is refused with a sentence
 * naming the architecture and what is supported.
 */
export function familyOf(configJson: Record<string, unknown>): ModelSpec {
  const archs = Array.isArray(configJson.architectures) ? configJson.architectures.filter((a): a is string => typeof a === 'string') : [];
  let modelType = typeof configJson.model_type === 'string' ? configJson.model_type : undefined;
  if (!modelType) modelType = archs.map((a) => BY_ARCHITECTURE[a]).find(Boolean);
  const what = [modelType ? `model_type "${modelType}"` : 'no model_type', archs.length ? `architectures ${archs.join(', ')}` : ''].filter(Boolean).join(', ');
  const name = modelType === undefined ? undefined : BY_MODEL_TYPE[modelType];
  if (!name) throw new Error(`This checkpoint's architecture (${what}) is not supported; AfD Studio runs ${SUPPORTED}.`);
  // A base model or a classification head has no LM head to load into a causal LM.
  const other = archs.find((a) => !/(ForCausalLM|LMHeadModel)$/.test(a));
  if (archs.length > 0 && other && !archs.some((a) => /(ForCausalLM|LMHeadModel)$/.test(a))) {
    throw new Error(`This checkpoint is a ${other}, not a causal language model; AfD Studio runs ${SUPPORTED}.`);
  }
  const family = FAMILIES[name];
  return { family, config: family.fromHfConfig(configJson) };
}
export { loraInit, loraParamShapes, loraScale, loraTargets, loraTraining, mergeLora, type LoraSpec } from './lora.ts';
