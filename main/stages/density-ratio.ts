// The density-ratio reward (DESIGN.md §2.5): r(x, y) = log pi_policy(y|x) - log pi_base(y|x),
// the logit of the Bayes-optimal policy-vs-base discriminator, with no training. Summed
// over the response's tokens (EOS included: ending is part of the response), or their
// mean with `perToken`, which does not favour short responses.
import { Generator } from '../../native-models/generate/generator.ts';
import { encodePair, loadModel, type LoadedModel } from './lm.ts';
import type { RewardFunction, RewardRuntime, Scored } from './reward-function.ts';

/** Items per scoring call: the unit of progress reports. */
const CHUNK = 64;

/** Prompt and response tokens of an item as both models read it. */
export function splitEncoded(model: LoadedModel, item: Scored, maxLength: number): { prompt: number[]; response: number[] } {
  const e = encodePair(model, item.prompt, item.response, maxLength);
  return { prompt: e.ids.slice(0, e.start), response: e.ids.slice(e.start) };
}

export async function densityRatioReward(policyDir: string, baseDir: string, perToken: boolean, runtime: RewardRuntime): Promise<RewardFunction> {
  const policy = await loadModel(policyDir), base = await loadModel(baseDir);
  const vp = policy.family.vocabSize(policy.config), vb = base.family.vocabSize(base.config);
  if (vp !== vb || policy.eosId !== base.eosId) {
    throw new Error(`The density ratio needs two models with one tokenizer, but ${policyDir} (vocabulary ${vp}, EOS ${policy.eosId}) and ${baseDir} (vocabulary ${vb}, EOS ${base.eosId}) differ; use a policy trained from the base.`);
  }
  const maxLength = Math.min(policy.maxLength, base.maxLength);
  const opts = { provider: runtime.provider, ...(runtime.threads ? { threads: runtime.threads } : {}) };
  const gp = await Generator.create(policy.family, policy.config, policy.weights, opts);
  let gb: Generator;
  try {
    gb = await Generator.create(base.family, base.config, base.weights, opts);
  } catch (err) {
    await gp.release();
    throw err;
  }
  return {
    describe: `density ratio log pi(${policyDir}) - log pi(${baseDir})${perToken ? ' per token' : ''}`,
    async score(items: readonly Scored[], onProgress?: (done: number, total: number) => void): Promise<number[]> {
      const out: number[] = [];
      for (let start = 0; start < items.length; start += CHUNK) {
        const enc = items.slice(start, start + CHUNK).map((x) => splitEncoded(policy, x, maxLength));
        const prompts = enc.map((e) => e.prompt), responses = enc.map((e) => e.response);
        const [p, b] = [await gp.score(prompts, responses), await gb.score(prompts, responses)];
        // Every response has at least its EOS token, so the mean is defined.
        enc.forEach((e, j) => out.push(perToken ? (p[j].sum - b[j].sum) / e.response.length : p[j].sum - b[j].sum));
        onProgress?.(out.length, items.length);
      }
      return out;
    },
    release: async () => {
      await gp.release();
      await gb.release();
    },
  };
}
