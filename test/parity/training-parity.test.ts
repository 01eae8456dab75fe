// Training parity with PyTorch, end to end. Each case trains a tiny random model for 12
// steps (RL: 3) through a stage's own training setup (sftTraining with either loss,
// scorerTraining, pairTraining, PolicyUpdate: the loss, trainable/frozen split, optimizer,
// schedule, clipping and batches the stage uses), and test/python/train_parity.py trains the same
// initial weights on the same rows with PyTorch, from its own reading of the objective;
// per-step losses and gradient norms and the final weights must agree. Each case also has
// deliberately broken variants on the PyTorch side (weight decay on biases, LoRA alpha
// doubled, a prompt token unmasked...), which must disagree: the comparison can fail.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Demonstration } from '../../main/stages/data.ts';
import { loadModel, sequenceFeeds, type TrainableModel } from '../../main/stages/lm.ts';
import { lengthReward } from '../../main/stages/reward-function.ts';
import { dpoStage, pairTraining } from '../../main/stages/kinds/dpo.ts';
import { rewardStage, scorerDataset, scorerTraining, type ScorerLoss } from '../../main/stages/kinds/reward.ts';
import { parsePolicyConfig, PolicyUpdate } from '../../main/stages/kinds/rl.ts';
import { sftStage, sftTraining } from '../../main/stages/kinds/sft.ts';
import { createTrainer, stageSchedule, trainSteps, type StageTraining } from '../../main/stages/training.ts';
import { learningRate } from '../../native-models/optim/schedule.ts';
import type { Trainer } from '../../native-models/train/trainer.ts';
import { transformersSkip } from '../python/oracle.ts';
import { compareRuns, optimizerOf, ourRun, parityContext, runOracle, tinyWorld, writeCase, type OurRun, type ParityCase, type ParityContext, type ParityStep, type TheirRun, type TinyWorld, type Tolerance } from './harness.ts';

const skip = transformersSkip();
let root = '';
let world: TinyWorld;
const ours = new Map<string, OurRun>();
/** Values our side computed besides the training (reference log-probabilities...), per step, to compare with the oracle's. */
const ourExtra = new Map<string, Record<string, number[][]>>();
const cases: Record<string, unknown>[] = [];
let theirs: TheirRun[] = [];

/**
 * Optimizer settings every case shares: a learning rate that moves a tiny model visibly in
 * 12 steps, a warm-up of 3 steps (0.2 of 12, rounded up), a weight decay large enough that
 * decaying the wrong tensors shows (0.5: lr wd = 1e-3 of a value per step), clipping at 1
 * (the tiny models' gradient norms are above it, so clipping acts).
 */
const OPTIMIZER = { lr: 2e-3, warmup: 0.2, weightDecay: 0.5, clipNorm: 1 };
const LORA = { adaptation: 'lora', loraRank: 4, loraAlpha: 8 };

const adaptationOf = (config: Record<string, unknown>): ParityCase['adaptation'] =>
  config.adaptation === 'lora' ? { kind: 'lora', rank: config.loraRank as number, alpha: config.loraAlpha as number } : { kind: 'full' };

/** Our run of a trained case (LoRA: the merged weights, which the stage saves, besides the adapters), and the case for the oracle. */
async function finish(ctx: ParityContext, trainer: Trainer, model: TrainableModel, c: Omit<ParityCase, 'optimizer' | 'adaptation'>, config: Record<string, unknown>): Promise<void> {
  const merged = model.loraScale === undefined ? new Map() : new Map([...model.weights(trainer.parameters())].map(([k, v]) => [`merged:${k}`, v]));
  ours.set(c.name, ourRun(ctx, trainer, merged));
  cases.push(await writeCase(ctx.dir, { ...c, adaptation: adaptationOf(config), optimizer: optimizerOf(config) }, trainer, model.init));
}

/** Runs a stage's training through trainSteps, as its `run` does. */
async function train(ctx: ParityContext, t: StageTraining, c: Omit<ParityCase, 'optimizer' | 'adaptation'>, config: Record<string, unknown>): Promise<void> {
  try {
    assert.equal(t.settings.steps, 12, `${c.name}: the case should take 12 steps`);
    await trainSteps(ctx, t.trainer, t.settings, t.batch);
    await finish(ctx, t.trainer, t.model, c, config);
  } finally {
    await t.trainer.release();
  }
}

async function sftCase(name: string, modelDir: string, raw: Record<string, unknown>, breaks: string[]): Promise<void> {
  const ctx = parityContext(join(root, name), 5);
  const model = await loadModel(modelDir);
  const config = sftStage.parse({ epochs: 3, batch: 4, maxLength: 24, ...OPTIMIZER, ...raw });
  const t = await sftTraining(ctx, config, model, world.demos.slice(0, 16));
  const objective = config.loss === 'dft' ? 'dft' : 'sft';
  await train(ctx, t, { name, model: modelDir, objective, pad: model.eosId, steps: t.batches.map((b) => ({ rows: b.map((i) => t.rows[i]) })), breaks }, config);
}

/** Each demonstration (positive) against other demonstrations' replies to its prompt (negatives). */
function scorerData(demos: readonly Demonstration[], negatives: number) {
  return scorerDataset(demos.map((d, i) => ({
    prompt: d.prompt,
    positive: [{ text: d.response, source: 'demos' }],
    negative: Array.from({ length: negatives }, (_, k) => ({ text: demos[(i + 3 + 5 * k) % demos.length].response, source: 'other' })),
  })));
}

async function scorerCase(name: string, modelDir: string, loss: ScorerLoss, raw: Record<string, unknown>, breaks: string[]): Promise<void> {
  const ctx = parityContext(join(root, name), 6);
  const model = await loadModel(modelDir);
  const config = rewardStage.parse({ positive: 'demos', negative: 'sft', loss, epochs: 2, batch: 4, maxLength: 24, ...OPTIMIZER, ...raw });
  // bce: 24 responses; bt: 12 prompts x 2 negatives = 24 pairs; 6 batches of 4 per epoch either way.
  const data = scorerData(world.demos.slice(0, 12), loss === 'bce' ? 1 : 2);
  const t = await scorerTraining(ctx, model, config, loss, data);
  const steps: ParityStep[] = t.batches.map((b) => {
    if (loss === 'bce') return { rows: b.map((i) => t.rows[i]), labels: b.map((i) => data.items[i].label) };
    return { rows: [...b.map((i) => t.rows[data.pairs[i][0]]), ...b.map((i) => t.rows[data.pairs[i][1]])], pairs: b.map((_, j) => [j, b.length + j] as [number, number]) };
  });
  await train(ctx, t, { name, model: modelDir, objective: loss, pad: model.eosId, steps, breaks }, config);
}

/** DPO (and so SPIN, which runs the same pairTraining) of the Llama against the other Llama as a frozen reference. */
async function dpoCase(name: string, breaks: string[]): Promise<void> {
  const ctx = parityContext(join(root, name), 7);
  const [policy, reference] = [await loadModel(world.llama), await loadModel(world.llamaReference)];
  const config = dpoStage.parse({ beta: 0.5, epochs: 3, batch: 4, maxLength: 24, ...OPTIMIZER });
  const demos = world.demos.slice(0, 16);
  const pairs = demos.map((d, i) => ({ prompt: d.prompt, chosen: d.response, rejected: demos[(i + 7) % demos.length].response }));
  const t = await pairTraining(ctx, config, policy, reference, pairs);
  const steps: ParityStep[] = t.batches.map((b) => ({ rows: [...b.map((i) => t.chosen[i]), ...b.map((i) => t.rejected[i])], pairs: b.map((_, j) => [j, b.length + j] as [number, number]) }));
  // The reference's log-probabilities as our generator scored them, in each step's row order.
  ourExtra.set(name, { ref_logp: t.batches.map((b) => [...b.map((i) => t.refLogp[i]), ...b.map((i) => t.refLogp[pairs.length + i])]) });
  await train(ctx, t, { name, model: world.llama, reference: world.llamaReference, objective: 'dpo', beta: config.beta, pad: policy.eosId, steps, breaks }, config);
}

/**
 * RL with a KL penalty to a reference of the other family: each step samples 4 replies to
 * each of 2 prompts from our current weights (PolicyUpdate.next, as the rl stage does,
 * LoRA adapters merged for sampling) and rewards them by length; the oracle gets those
 * samples and rewards and computes the log-probabilities, the KL-penalized rewards, the
 * advantages and the update itself.
 */
async function rlCase(name: string, policyDir: string, referenceDir: string, raw: Record<string, unknown>, breaks: string[]): Promise<void> {
  const ctx = parityContext(join(root, name), 8);
  const [policy, reference] = [await loadModel(policyDir), await loadModel(referenceDir)];
  const config = parsePolicyConfig({ k: 4, promptsPerStep: 2, steps: 3, beta: 0.1, maxNewTokens: 6, ...OPTIMIZER, ...raw });
  const pu = await PolicyUpdate.create(ctx, config, policy, reference, world.demos.map((d) => d.prompt));
  const reward = lengthReward('median', 12);
  const steps: ParityStep[] = [];
  const extra: Record<string, number[][]> = { policy_logp: [], ref_logp: [] };
  try {
    await trainSteps(ctx, pu.trainer, pu.settings, async (s) => {
      const n = await pu.next(s, reward);
      steps.push({ rows: n.rollout.rows, rewards: n.rewards });
      extra.policy_logp.push(n.rollout.logpPolicy);
      extra.ref_logp.push(n.rollout.logpRef);
      return n.feeds;
    });
    ourExtra.set(name, extra);
    await finish(ctx, pu.trainer, pu.model, { name, model: policyDir, reference: referenceDir, objective: 'pg', beta: config.beta, k: config.k, estimator: config.estimator, pad: policy.eosId, steps, breaks }, config);
  } finally {
    await pu.release();
  }
}

/**
 * Gradient accumulation: the sft stage's loss and trainable model with a trainer that
 * accumulates two micro-batches of 2 rows per step (createTrainer with accumulation 2),
 * weighted by their response tokens, on the stage's schedule; the oracle trains each step
 * on the 4 rows unsplit.
 */
async function accumulationCase(name: string, breaks: string[]): Promise<void> {
  const ctx = parityContext(join(root, name), 9);
  const model = await loadModel(world.gpt2);
  const config = sftStage.parse({ epochs: 3, batch: 4, maxLength: 24, ...OPTIMIZER });
  const t = await sftTraining(ctx, config, model, world.demos.slice(16, 32));
  await t.trainer.release();
  const trainer = await createTrainer(ctx, t.model, t.loss, { ...t.settings, accumulation: 2 });
  const steps: ParityStep[] = [];
  try {
    for (let s = 0; s < t.settings.steps; s++) {
      const micro = [[0, 1], [2, 3]];
      const feeds = micro.map((m) => sequenceFeeds(m.map((j) => t.rows[t.batches[s][j]]), model.eosId));
      const tokens = feeds.map((f) => (f.mask.data as Float32Array).reduce((a, b) => a + b, 0));
      const r = await trainer.step(feeds, learningRate(stageSchedule(t.settings), s), tokens);
      ctx.metric(r.step, { loss: r.loss, grad_norm: r.gradNorm });
      steps.push({ rows: t.batches[s].map((i) => t.rows[i]), micro });
    }
    await finish(ctx, trainer, t.model, { name, model: world.gpt2, objective: 'sft', pad: model.eosId, steps, breaks }, config);
  } finally {
    await trainer.release();
  }
}

before(async () => {
  if (skip) return;
  root = await mkdtemp(join(tmpdir(), 'afd-parity-'));
  world = await tinyWorld(root);
  await sftCase('sft-gpt2-full', world.gpt2, {}, ['decay-all', 'unmask-prompt-token']);
  await sftCase('sft-llama-lora', world.llama, LORA, ['lora-alpha-x2']);
  await sftCase('sft-llama-full', world.llama, {}, ['schedule-shift']);
  await sftCase('dft-llama-full', world.llama, { loss: 'dft' }, ['dft-weight-grad', 'unmask-prompt-token']);
  await scorerCase('reward-bce-gpt2-full', world.gpt2, 'bce', {}, ['head-last-column', 'no-clip']);
  await scorerCase('reward-bt-llama-lora', world.llama, 'bt', LORA, ['head-last-column']);
  await dpoCase('dpo-llama-full', ['ref-swapped']);
  await rlCase('rl-rloo-gpt2-full', world.gpt2, world.llamaReference, { estimator: 'rloo' }, ['kl-sign']);
  await rlCase('rl-grpo-llama-lora', world.llama, world.gpt2, { estimator: 'grpo', ...LORA }, ['kl-sign', 'lora-alpha-x2']);
  await accumulationCase('accumulation-sft-gpt2', ['micro-mean']);
  theirs = await runOracle(root, cases);
}, { timeout: 300_000 });
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/**
 * Tolerances, fp32 on both sides. Both compute the same sums in different orders (ONNX
 * Runtime's kernels against PyTorch's), so values differ by rounding: a few float32 ulps
 * (1.2e-7 relative) per operation, growing over a forward and backward pass and 12 steps.
 * Measured here, over every case: losses agree to 2e-6 relative, gradient norms to 1.1e-5,
 * final weights to 2.1e-6 absolute (values of order 0.1-1). The tolerances sit 5-10x
 * above those and far below what one wrong setting does: every broken variant moves the
 * losses by 1.5e-3 or more relative and the weights by 5e-3 or more (the diagnostics print both).
 * - losses: 1e-5 relative;
 * - gradient norms: 1e-4 relative (a norm sums squares over every parameter, so it
 *   collects more rounding than the loss);
 * - weights: 2e-5 absolute on every trained value (Adam's step is about lr = 2e-3 whatever
 *   the gradient's size, so a mistake anywhere shows at that scale).
 */
const FP32: Tolerance = { loss: 1e-5, gradNorm: 1e-4, weight: 2e-5 };

/**
 * GPT-2's key biases (c_attn.bias[D, 2D)) add q.b_k to every score of a query's row, which
 * the softmax cancels: their gradient is zero in exact arithmetic and rounding noise (about
 * 1e-9) on both sides, which Adam's normalization turns into steps of up to lr. They are
 * held to Adam's bound, lr per step, instead.
 */
const gpt2KeyBias = (D: number, steps: number): Tolerance['noise'] => ({ match: (name, i) => name.endsWith('attn.c_attn.bias') && i >= D && i < 2 * D, bound: steps * OPTIMIZER.lr });
const GPT2: Tolerance = { ...FP32, noise: gpt2KeyBias(32, 12) };

/** Bradley-Terry reads only differences of two scores, so the head's bias cancels: a gradient of rounding noise, like GPT-2's key biases. */
const BT: Tolerance = { ...FP32, noise: { match: (name) => name === 'score.bias', bound: 12 * OPTIMIZER.lr } };

/**
 * DPO's loss is log sigmoid of beta times a difference of four summed response
 * log-probabilities (about -40 each); their float32 sums carry an absolute rounding of
 * about 1e-5, which reaches the loss as such: at a loss of 0.3 that is 1e-5 to 2e-5
 * relative (measured 1.4e-5). 1e-4 relative on the loss.
 */
const DPO: Tolerance = { ...FP32, loss: 1e-4 };

/**
 * DFT's loss averages -p log p over response tokens, small on a tiny random model (0.02 to
 * 0.04: its tokens have p of a few 1e-3), so the rounding of log p (about 1e-6 absolute,
 * which p log p carries nearly unscaled) is a larger share of it: measured 4.6e-6
 * relative after 12 steps. 3e-5 relative on the loss; the broken variants move it by
 * 6.7e-2 or more.
 */
const DFT: Tolerance = { ...FP32, loss: 3e-5 };

/**
 * Policy gradients (RLOO and GRPO advantages both sum to zero over each prompt's samples):
 * - the loss -mean(A log pi) is a sum of terms of some tens (a reply's summed
 *   log-probability) that cancel to near 0, so its rounding is that of the terms, about
 *   1e-6 absolute (measured: 1.4e-6 on a GRPO loss of 0.006, 1.7e-4 relative): 1e-5
 *   absolute, or 1e-5 relative;
 * - the gradient of a token's output embedding that no sample chose is a sum of terms that
 *   cancel down to rounding, and Adam's first steps are about lr times the gradient's sign
 *   whatever its size, so such a value can differ by up to 2 lr per step: 4 values may
 *   (measured: 1 of 10,240 embedding values, by 4.6e-5). A mistake in the objective moves
 *   thousands of values, and the losses.
 */
const RL: Tolerance = { ...FP32, lossAbs: 1e-5, rare: { count: 4, bound: 2 * 3 * OPTIMIZER.lr } };

function check(name: string, tol: Tolerance, t: { diagnostic(s: string): void }): void {
  const o = ours.get(name)!;
  const clean = theirs.find((r) => r.name === name && r.break === null)!;
  const c = compareRuns(o, clean, tol);
  t.diagnostic(`${name}: loss ${o.losses[0].toFixed(4)} -> ${o.losses.at(-1)!.toFixed(4)}, gradient norms ${Math.min(...o.gradNorms).toFixed(2)}-${Math.max(...o.gradNorms).toFixed(2)}, lr ${clean.lrs.map((x) => x.toExponential(1)).join(' ')}`);
  t.diagnostic(`  largest differences from PyTorch: loss ${c.maxLoss.toExponential(2)}, gradient norm ${c.maxGradNorm.toExponential(2)}, weight ${c.maxWeight.toExponential(2)} (${c.worstWeight})`);
  assert.deepEqual(c.failures, [], `${name} disagrees with PyTorch`);
  const broken = theirs.filter((r) => r.name === name && r.break !== null);
  assert.ok(broken.length > 0, `${name} has no broken variant`);
  for (const b of broken) {
    const d = compareRuns(o, b, tol);
    t.diagnostic(`  broken '${b.break}': loss ${d.maxLoss.toExponential(2)}, gradient norm ${d.maxGradNorm.toExponential(2)}, weight ${d.maxWeight.toExponential(2)}`);
    assert.ok(d.failures.length > 0, `${name} with '${b.break}' on the PyTorch side still agrees: the comparison cannot see that mistake`);
  }
}

/** Largest difference between our per-step values and the oracle's (log-probabilities our generator computed). */
function extraDiff(name: string, key: string): number {
  const theirValues = theirs.find((r) => r.name === name && r.break === null)!.extra[key];
  return Math.max(...ourExtra.get(name)![key].flatMap((row, s) => row.map((x, j) => Math.abs(x - theirValues[s][j]))));
}

test('sft, GPT-2, full fine-tuning (response-only loss)', { skip }, (t) => check('sft-gpt2-full', GPT2, t));
test('sft, Llama, LoRA (rank 4, alpha 8, every attention and MLP projection)', { skip }, (t) => check('sft-llama-lora', FP32, t));
test('sft, Llama, full fine-tuning', { skip }, (t) => check('sft-llama-full', FP32, t));
test('sft with loss: dft (each token weighted by its detached probability), Llama, full fine-tuning', { skip }, (t) => check('dft-llama-full', DFT, t));
test('reward model, scalar head, pointwise BCE, GPT-2, full fine-tuning', { skip }, (t) => check('reward-bce-gpt2-full', GPT2, t));
test('reward model, scalar head, Bradley-Terry pairs, Llama, LoRA', { skip }, (t) => check('reward-bt-llama-lora', BT, t));

test('DPO against a frozen reference, Llama, full fine-tuning', { skip }, (t) => {
  check('dpo-llama-full', DPO, t);
  // Our reference log-probabilities come from the generator's scoring graph (computed once).
  const d = extraDiff('dpo-llama-full', 'ref_logp');
  t.diagnostic(`  reference log-probabilities: largest difference ${d.toExponential(2)}`);
  assert.ok(d < 1e-4, `the reference log-probabilities differ by ${d}`);
});

function checkRl(name: string, tol: Tolerance, t: { diagnostic(s: string): void }): void {
  check(name, tol, t);
  // The log-probabilities of the samples that enter the KL term: ours from the generator's scoring graph.
  for (const key of ['policy_logp', 'ref_logp']) {
    const d = extraDiff(name, key);
    t.diagnostic(`  ${key}: largest difference ${d.toExponential(2)}`);
    assert.ok(d < 1e-4, `${key} differs by ${d}`);
  }
}

test('RL, RLOO with the KL penalty, GPT-2, full fine-tuning, on our samples and fixed rewards', { skip }, (t) => checkRl('rl-rloo-gpt2-full', { ...RL, noise: GPT2.noise }, t));
test('RL, GRPO with the KL penalty, Llama, LoRA, on our samples and fixed rewards', { skip }, (t) => checkRl('rl-grpo-llama-lora', RL, t));

test('gradient accumulation over two micro-batches equals the batch unsplit', { skip }, (t) => check('accumulation-sft-gpt2', GPT2, t));
