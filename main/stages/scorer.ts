// The reward scorer (DESIGN.md §2.3): an LM backbone with a scalar head on the hidden
// state of each sequence's last real token, r(x, y) = h_last . w + b. Training stages
// (reward, pref-reward, judge, and the AIRL discriminator) build `scores` [B] with
// scorerScores over a TrainableModel that carries the head (withScoreHead); a trained
// scorer is saved as a folder and scored later by a forward-only ONNX session with every
// weight frozen as an initializer.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { frozenParams } from '../../native-models/generate/graphs.ts';
import * as T from '../../native-models/ir/index.ts';
import { fromFloat32, readSafetensors, toFloat32, writeSafetensors } from '../../native-models/runtime/safetensors.ts';
import type { Rng } from '../../native-models/train/rng.ts';
import { encodePair, lastHidden, loadModel, saveModel, sequenceFeeds, type LoadedModel, type TrainableModel } from './lm.ts';
import { graphSession } from './graph-session.ts';
import { HEAD_FILE, SCORER_DIR, SCORER_JSON } from './scorer-folder.ts';
import type { RewardFunction, RewardRuntime, Scored } from './reward-function.ts';

export const SCORE_WEIGHT = 'score.weight';
export const SCORE_BIAS = 'score.bias';
export { HEAD_FILE, SCORER_DIR, SCORER_JSON } from './scorer-folder.ts';

/** The head's values: weight [D] (stored as [D, 1]) and bias. */
export interface ScoreHead {
  weight: Float32Array;
  bias: number;
}

/** Width D of the backbone's hidden states, from its config. */
export function hiddenSize(model: Pick<LoadedModel, 'family' | 'config'>): number {
  const hf = model.family.toHfConfig(model.config);
  const d = hf.n_embd ?? hf.hidden_size;
  if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) throw new Error(`The ${model.family.name} config has no hidden size (n_embd or hidden_size); a scorer needs it for its head.`);
  return d;
}

/** The head's parameters as IR leaves: score.weight [D, 1], score.bias [1]. */
export function headParams(D: number): Map<string, T.Value> {
  return new Map([
    [SCORE_WEIGHT, T.param(SCORE_WEIGHT, [D, 1])],
    [SCORE_BIAS, T.param(SCORE_BIAS, [1])],
  ]);
}

/** The head's initial values: weight ~ N(0, 0.02^2) like Hugging Face's reward heads, bias 0. */
export function headInit(D: number, rng: Rng): Map<string, Float32Array> {
  return new Map([
    [SCORE_WEIGHT, Float32Array.from({ length: D }, () => 0.02 * rng.normal())],
    [SCORE_BIAS, new Float32Array(1)],
  ]);
}

/** `tm` with a trainable score head added (params, trainable, init); `weights()` still returns the backbone's only. */
export function withScoreHead(tm: TrainableModel, D: number, rng: Rng): TrainableModel {
  const head = headParams(D);
  const init = headInit(D, rng);
  const params = new Map(tm.params);
  for (const [name, v] of head) params.set(name, v);
  const mergedInit = new Map(tm.init);
  for (const [name, v] of init) mergedInit.set(name, v);
  return {
    ...tm,
    params,
    trainable: [...tm.trainable, ...head.values()],
    init: mergedInit,
    // LoRA's merge refuses unknown tensors, so the head is taken out before it.
    weights: (trained) => tm.weights(new Map([...trained].filter(([n]) => n !== SCORE_WEIGHT && n !== SCORE_BIAS))),
  };
}

/** The head's values out of trained parameters. */
export function headOf(trained: ReadonlyMap<string, Float32Array>): ScoreHead {
  const w = trained.get(SCORE_WEIGHT), b = trained.get(SCORE_BIAS);
  if (!w || !b) throw new Error(`The trained parameters have no score head (${SCORE_WEIGHT}, ${SCORE_BIAS}); build the model with withScoreHead.`);
  return { weight: Float32Array.from(w), bias: b[0] };
}

/**
 * Scores [B] of right-padded sequences: the head on the final hidden state of each row's
 * last real token (`last`: flat index b*T + t, as sequenceFeeds makes it). `trainable.params`
 * must hold the backbone's parameters and score.weight / score.bias.
 */
export function scorerScores(
  model: Pick<LoadedModel, 'family' | 'config'>,
  trainable: Pick<TrainableModel, 'params' | 'loraScale'>,
  inputs: { tokens: T.Value; last: T.Value },
): T.Value {
  const w = trainable.params.get(SCORE_WEIGHT), b = trainable.params.get(SCORE_BIAS);
  if (!w || !b) throw new Error(`The scorer's parameters have no score head (${SCORE_WEIGHT}, ${SCORE_BIAS}); add it with withScoreHead.`);
  const { hidden } = model.family.forward(model.config, trainable.params, {
    tokens: inputs.tokens,
    ...(trainable.loraScale === undefined ? {} : { loraScale: trainable.loraScale }),
  });
  const h = lastHidden(hidden, inputs.last); // [B, D]
  return T.reshape(T.add(T.matmul(h, w), b), [-1]); // [B]
}

/**
 * Writes a trained scorer to `<stageDir>/scorer/` (a Hugging Face folder of the backbone,
 * adapters merged, plus score_head.safetensors and scorer.json) and returns that folder.
 * It is assembled under a temporary name and renamed, so a present folder is complete.
 */
export async function saveScorer(stageDir: string, model: LoadedModel, backbone: ReadonlyMap<string, Float32Array>, head: ScoreHead, maxLength: number): Promise<string> {
  const dir = join(stageDir, SCORER_DIR);
  const temp = join(stageDir, `.${SCORER_DIR}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await saveModel(temp, model, backbone);
    await writeSafetensors(join(temp, HEAD_FILE), {
      [SCORE_WEIGHT]: fromFloat32(head.weight, [head.weight.length, 1]),
      [SCORE_BIAS]: fromFloat32(Float32Array.of(head.bias), [1]),
    });
    await writeFile(join(temp, SCORER_JSON), `${JSON.stringify({ maxLength, hiddenSize: head.weight.length }, null, 1)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(temp, dir);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return dir;
}

/** Items per run at most, and padded tokens per run at most (B * T). */
const MAX_ROWS = 64;
const TOKEN_BUDGET = 16384;

/**
 * A reward function over a backbone's weights and a head, held in memory: a forward-only
 * graph with every weight frozen in it. Items are encoded as in training (encodePair,
 * sequenceFeeds), sorted by length so that a run pads little, and returned in input order.
 */
export async function scorerReward(model: LoadedModel, backbone: ReadonlyMap<string, Float32Array>, head: ScoreHead, maxLength: number, runtime: RewardRuntime, describe = 'scorer'): Promise<RewardFunction> {
  const D = hiddenSize(model);
  if (head.weight.length !== D) throw new Error(`The score head has ${head.weight.length} weights but the backbone's hidden size is ${D}; the scorer folder is inconsistent.`);
  const frozen = frozenParams(model.family, model.config, backbone);
  const params = new Map(frozen.params);
  const initializers = new Map<T.Value, Float32Array>(frozen.initializers);
  for (const [name, v] of headParams(D)) {
    params.set(name, v);
    initializers.set(v, name === SCORE_WEIGHT ? head.weight : Float32Array.of(head.bias));
  }
  const tokens = T.input('tokens', 'int64', ['B', 'T']), last = T.input('last', 'int64', ['B']);
  const scores = scorerScores(model, { params }, { tokens, last });
  const session = await graphSession({ outputs: { scores }, initializers, inputs: [tokens, last], name: `afd-scorer-${model.family.name}` }, { provider: runtime.provider, intraOpThreads: runtime.threads });
  const length = Math.min(maxLength, model.maxLength);
  return {
    describe,
    async score(items: readonly Scored[], onProgress?: (done: number, total: number) => void): Promise<number[]> {
      const rows = items.map((x) => encodePair(model, x.prompt, x.response, length));
      const order = rows.map((_, i) => i).sort((a, b) => rows[a].ids.length - rows[b].ids.length);
      const out = new Array<number>(items.length).fill(NaN);
      let done = 0;
      for (let start = 0; start < order.length;) {
        // Shortest first: the last row of a run sets its width.
        let end = start + 1;
        while (end < order.length && end - start < MAX_ROWS && (end - start + 1) * rows[order[end]].ids.length <= TOKEN_BUDGET) end++;
        const chunk = order.slice(start, end);
        const feeds = sequenceFeeds(chunk.map((i) => rows[i]), model.eosId);
        const r = await session.run({ tokens: feeds.tokens, last: feeds.last });
        const s = r.scores.data as Float32Array;
        chunk.forEach((i, b) => (out[i] = s[b]));
        done += chunk.length;
        start = end;
        onProgress?.(done, items.length);
      }
      return out;
    },
    release: () => session.release(),
  };
}

/** The scorer saved at `dir` (by saveScorer) as a reward function. */
export async function loadScorerReward(dir: string, runtime: RewardRuntime): Promise<RewardFunction> {
  let meta: { maxLength?: unknown };
  try {
    meta = JSON.parse(await readFile(join(dir, SCORER_JSON), 'utf8')) as { maxLength?: unknown };
  } catch (err) {
    throw new Error(`${dir} is not a saved scorer (its ${SCORER_JSON} cannot be read: ${(err as Error).message}); point the reward at a reward stage's scorer folder.`, { cause: err });
  }
  if (typeof meta.maxLength !== 'number') throw new Error(`${join(dir, SCORER_JSON)} has no maxLength; the scorer folder is damaged.`);
  const model = await loadModel(dir);
  const st = await readSafetensors(join(dir, HEAD_FILE));
  const w = st.tensors.get(SCORE_WEIGHT), b = st.tensors.get(SCORE_BIAS);
  if (!w || !b) throw new Error(`${join(dir, HEAD_FILE)} lacks ${SCORE_WEIGHT} or ${SCORE_BIAS}; the scorer folder is damaged.`);
  return scorerReward(model, model.weights, { weight: Float32Array.from(toFloat32(w)), bias: toFloat32(b)[0] }, meta.maxLength, runtime, `scorer ${dir}`);
}
