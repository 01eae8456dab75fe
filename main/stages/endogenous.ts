// The endogenous reward (Li et al. 2025; docs/methods.md): a reward read off one model's
// logits by the inverse soft Bellman operator (native-models/objectives/endogenous.ts),
// with no reward model trained and no pi_0. A forward-only graph holds the model's weights
// as initializers and returns each response's summed reward; the [B, T, V] logits never
// leave it.
import ort from 'onnxruntime-node';
import { frozenParams } from '../../native-models/generate/graphs.ts';
import * as T from '../../native-models/ir/index.ts';
import { endogenousReturn, type EndogenousOptions } from '../../native-models/objectives/endogenous.ts';
import { encodePair, loadModel, type Encoded, type LoadedModel } from './lm.ts';
import { graphSession } from './graph-session.ts';
import type { RewardFunction, RewardRuntime, Scored } from './reward-function.ts';

export interface EndogenousSettings extends EndogenousOptions {
  /** The mean over the response's tokens instead of the sum. */
  perToken: boolean;
}

/** Logits per run at most (B * T * V floats): 256 MiB, as the generator's scoring. */
const LOGITS_BUDGET = 1 << 26;

/**
 * Right-padded rows for endogenousReturn. Unlike training batches, every token of a row is
 * an input, so a row cut before its EOS still has the logits of its last state. Position t
 * holds action a_t = ids[t + 1]; `action` marks response actions, `value` their next
 * states s_{t+1} = position t + 1, except the state after a final EOS (terminal, V = 0).
 */
export function endogenousFeeds(rows: readonly Encoded[], eos: number): { tokens: ort.Tensor; targets: ort.Tensor; action: ort.Tensor; value: ort.Tensor } {
  const B = rows.length, W = Math.max(...rows.map((r) => r.ids.length));
  const tokens = new BigInt64Array(B * W).fill(BigInt(eos)), targets = new BigInt64Array(B * W).fill(BigInt(eos));
  const action = new Float32Array(B * W), value = new Float32Array(B * W);
  rows.forEach((r, b) => {
    const n = r.ids.length;
    if (r.start < 1 || r.start >= n) throw new Error(`row ${b} has no prompt token or no response token (start ${r.start} of ${n}); the endogenous reward conditions on a prompt and scores a response.`);
    for (let t = 0; t < n; t++) tokens[b * W + t] = BigInt(r.ids[t]);
    for (let t = r.start - 1; t < n - 1; t++) {
      targets[b * W + t] = BigInt(r.ids[t + 1]);
      action[b * W + t] = 1;
      if (!(t + 1 === n - 1 && r.ids[t + 1] === eos)) value[b * W + t + 1] = 1;
    }
  });
  return {
    tokens: new ort.Tensor('int64', tokens, [B, W]),
    targets: new ort.Tensor('int64', targets, [B, W]),
    action: new ort.Tensor('float32', action, [B, W]),
    value: new ort.Tensor('float32', value, [B, W]),
  };
}

/** The endogenous reward of `model` (already loaded) as a reward function. */
export async function endogenousRewardOf(model: LoadedModel, s: EndogenousSettings, runtime: RewardRuntime, describe: string): Promise<RewardFunction> {
  const frozen = frozenParams(model.family, model.config, model.weights);
  const tokens = T.input('tokens', 'int64', ['B', 'T']), targets = T.input('targets', 'int64', ['B', 'T']);
  const action = T.input('action', 'float32', ['B', 'T']), value = T.input('value', 'float32', ['B', 'T']);
  const { logits } = model.family.forward(model.config, frozen.params, { tokens });
  const reward = endogenousReturn(logits, targets, action, value, s);
  const session = await graphSession({ outputs: { reward }, initializers: frozen.initializers, inputs: [tokens, targets, action, value], name: `afd-endogenous-${model.family.name}` }, { provider: runtime.provider, intraOpThreads: runtime.threads });
  const V = model.family.vocabSize(model.config);
  return {
    describe,
    async score(items: readonly Scored[], onProgress?: (done: number, total: number) => void): Promise<number[]> {
      const rows = items.map((x) => encodePair(model, x.prompt, x.response, model.maxLength));
      // Shortest first, so that a run pads little; its last row sets its width.
      const order = rows.map((_, i) => i).sort((a, b) => rows[a].ids.length - rows[b].ids.length);
      const out = new Array<number>(items.length).fill(NaN);
      for (let start = 0; start < order.length;) {
        let end = start + 1;
        while (end < order.length && (end - start + 1) * rows[order[end]].ids.length * V <= LOGITS_BUDGET) end++;
        const chunk = order.slice(start, end);
        const r = await session.run(endogenousFeeds(chunk.map((i) => rows[i]), model.eosId));
        const sums = r.reward.data as Float32Array;
        chunk.forEach((i, b) => (out[i] = s.perToken ? sums[b] / (rows[i].ids.length - rows[i].start) : sums[b]));
        start = end;
        onProgress?.(end, items.length);
      }
      return out;
    },
    release: () => session.release(),
  };
}

/** The endogenous reward of the model folder `dir`. */
export async function endogenousReward(dir: string, s: EndogenousSettings, runtime: RewardRuntime): Promise<RewardFunction> {
  const model = await loadModel(dir);
  const how = `alpha ${s.alpha}, gamma ${s.gamma}${s.perToken ? ', per token' : ''}`;
  return endogenousRewardOf(model, s, runtime, `endogenous reward of ${dir} (${how})`);
}
