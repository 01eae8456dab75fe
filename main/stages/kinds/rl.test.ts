import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Generator } from '../../../native-models/generate/generator.ts';
import { loadModel } from '../lm.ts';
import type { RewardFunction } from '../reward-function.ts';
import { writeArtifactDetails, type StageContext } from '../stage.ts';
import { buildToyModel, hasMarker, toyDemonstrations, modelMarkerRate } from '../toy.ts';
import { PolicyUpdate, rlStage, runRl, stepPrompts } from './rl.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
const data = toyDemonstrations();
// A reward that is known: 1 when the response ends with the marker, else 0.
const markerReward: RewardFunction = { describe: 'marker', score: async (xs) => xs.map((x) => (hasMarker(x.response) ? 1 : 0)), release: async () => {} };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-rl-'));
  // pi_0 ends about one reply in seven with the marker: rare enough to leave room, common enough to be found.
  await buildToyModel(join(root, 'pi0'), { markerRate: 0.3 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Marker rate of 4 seeded samples per eval prompt. */
const evalMarkerRate = (dir: string): Promise<number> => modelMarkerRate(dir, data.eval.map((d) => d.prompt), { perPrompt: 4, maxNewTokens: 24, seed: 1000 });

interface Run {
  status: string;
  metrics: { step: number; values: Record<string, number> }[];
  checkpoint: string | null;
}

/** runRl with an injected reward, through a context like testing.ts's (stop after `stopAt` steps). */
async function rl(dir: string, raw: Record<string, number | string>, o: { stopAt?: number; checkpoint?: string | null } = {}): Promise<Run> {
  const metrics: Run['metrics'] = [];
  let stop = false, checkpoint = o.checkpoint ?? null;
  await mkdir(dir, { recursive: true });
  const ctx: StageContext = {
    seed: 5, dir, checkpoint, provider: 'cpu', threads: 1, signal: new AbortController().signal,
    stopRequested: () => stop, data: async () => data,
    progress: (step) => void (o.stopAt !== undefined && step >= o.stopAt && (stop = true)),
    metric: (step, values) => void metrics.push({ step, values }), log: () => {},
    checkpointed: async (file) => void (checkpoint = file),
  };
  const model = await loadModel(join(root, 'pi0'));
  const outcome = await runRl(ctx, rlStage.parse({ policy: 'pi0', reward: 'marker', maxNewTokens: 24, warmup: 0, ...raw }), model, model, markerReward);
  return { status: outcome.status, metrics, checkpoint };
}

test('rl parses its defaults: policy sft, reference = policy, rloo, k 4, 8 prompts per step, beta 0.05', () => {
  const c = rlStage.parse({ reward: 'rm' });
  assert.deepEqual([c.policy, c.reference, c.estimator, c.k, c.promptsPerStep, c.beta, c.reward], ['sft', 'sft', 'rloo', 4, 8, 0.05, 'rm']);
  assert.equal(rlStage.parse({ reward: 'rm', policy: 'x' }).reference, 'x');
  assert.throws(() => rlStage.parse({}), /reward/);
  assert.throws(() => rlStage.parse({ reward: 'rm', k: 1 }), /k must be/);
});

test('maxPromptTokens keeps only the last tokens of each rollout prompt (absent: the whole prompt)', async () => {
  assert.equal(rlStage.parse({ reward: 'rm' }).maxPromptTokens, undefined, 'absent unless set, so stored stages keep their settings');
  const model = await loadModel(join(root, 'pi0'));
  const ctx = { seed: 5, dir: root, checkpoint: null, provider: 'cpu', threads: 1, signal: new AbortController().signal, stopRequested: () => false, data: async () => data, progress: () => {}, metric: () => {}, log: () => {}, checkpointed: async () => {} } satisfies StageContext;
  const prompts = data.train.map((d) => d.prompt);
  const starts = async (raw: Record<string, number | string>): Promise<number[]> => {
    const pu = await PolicyUpdate.create(ctx, rlStage.parse({ policy: 'pi0', reward: 'marker', maxNewTokens: 4, promptsPerStep: 4, k: 2, ...raw }), model, model, prompts);
    try {
      const r = await pu.rollout(0);
      // Each row is the prompt's kept tokens, then the response: the prompt's last tokens stay.
      r.rows.forEach((row, j) => {
        const whole = model.tokenizer.encode(prompts[r.prompt[j]], { addSpecialTokens: false });
        assert.deepEqual(row.ids.slice(0, row.start), whole.slice(whole.length - row.start));
      });
      return r.rows.map((row) => row.start);
    } finally {
      await pu.release();
    }
  };
  const whole = await starts({}), cut = await starts({ maxPromptTokens: 6 });
  assert.ok(Math.max(...whole) > 6, `the toy prompts are longer than the cut (${Math.max(...whole)} tokens)`);
  assert.deepEqual(cut, whole.map((n) => Math.min(n, 6)));
});

test('the prompts of consecutive steps go through every prompt once per pass, in a seeded order', () => {
  const a = [0, 1, 2].flatMap((s) => stepPrompts(12, 4, s, 9));
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 12 }, (_, i) => i));
  assert.deepEqual(stepPrompts(12, 4, 1, 9), stepPrompts(12, 4, 1, 9));
  assert.notDeepEqual([0, 1, 2].flatMap((s) => stepPrompts(12, 4, s, 10)), a);
});

test('RL against the marker reward raises the marker rate well above pi_0', async (t) => {
  const before = await evalMarkerRate(join(root, 'pi0'));
  const run = await rl(join(root, 'rl'), { steps: 12, lr: 1e-3 });
  assert.equal(run.status, 'done');
  const after = await evalMarkerRate(join(root, 'rl', 'model'));
  const rewards = run.metrics.filter((m) => m.values.reward !== undefined).map((m) => m.values.reward);
  assert.equal(rewards.length, 12);
  assert.ok(run.metrics.every((m) => m.values.kl === undefined || Number.isFinite(m.values.kl)), 'finite KL estimates');
  t.diagnostic(`marker rate ${before.toFixed(3)} -> ${after.toFixed(3)}; reward per step ${rewards.map((r) => r.toFixed(2)).join(' ')}`);
  assert.ok(after >= before + 0.3, `marker rate ${before} -> ${after}`);
  // The training reward (the policy's own samples) rises with it.
  assert.ok(rewards.slice(-3).reduce((a, b) => a + b) / 3 > rewards[0] + 0.3, `rewards ${rewards.map((r) => r.toFixed(2)).join(' ')}`);
});

test('a stopped and resumed RL run ends with the same weights as an uninterrupted one', async (t) => {
  const raw = { steps: 4, lr: 1e-3, k: 2, promptsPerStep: 4, estimator: 'grpo' };
  await rl(join(root, 'whole'), raw);
  const first = await rl(join(root, 'parts'), raw, { stopAt: 2 });
  assert.equal(first.status, 'stopped');
  assert.ok(first.checkpoint !== null);
  const second = await rl(join(root, 'parts'), raw, { checkpoint: first.checkpoint });
  assert.equal(second.status, 'done');
  assert.deepEqual(second.metrics.filter((m) => m.values.reward !== undefined).map((m) => m.step), [3, 4], 'the resumed run takes steps 3 and 4 only');
  const [a, b] = [await loadModel(join(root, 'whole', 'model')), await loadModel(join(root, 'parts', 'model'))];
  let maxDiff = 0;
  for (const [name, w] of a.weights) {
    const v = b.weights.get(name)!;
    for (let i = 0; i < w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(w[i] - v[i]));
  }
  t.diagnostic(`max weight difference ${maxDiff}`);
  assert.ok(maxDiff <= 1e-6, `max weight difference ${maxDiff}`);
  // And the run moved the weights at all (a no-op would pass the comparison trivially).
  const p0 = await loadModel(join(root, 'pi0'));
  const moved = [...a.weights].some(([n, w]) => w.some((x, i) => x !== p0.weights.get(n)![i]));
  assert.ok(moved, 'the weights changed');
});

test('the rl stage loads its reward from a reward artifact (the length heuristic) and writes a LoRA-trained model, adapters merged', async () => {
  const rewardDir = join(root, 'length-reward');
  await mkdir(rewardDir, { recursive: true });
  await writeArtifactDetails(rewardDir, { type: 'reward', reward: 'length', mode: 'longest', target: 0 });
  const run = await runStage(rlStage, { policy: 'pi0', reward: 'length', steps: 2, k: 2, promptsPerStep: 2, maxNewTokens: 16, lr: 1e-3, adaptation: 'lora', loraRank: 4 }, {
    policy: pi0(join(root, 'pi0')), reference: pi0(join(root, 'pi0')), reward: { type: 'reward', dir: rewardDir, stage: 'length' },
  }, { dir: join(root, 'rl-stage'), data });
  assert.equal(run.outcome.status, 'done');
  const [m, p0] = [await loadModel(join(root, 'rl-stage', 'model')), await loadModel(join(root, 'pi0'))];
  assert.equal(m.weights.size, p0.weights.size);
  assert.ok([...m.weights].some(([n, w]) => w.some((x, i) => x !== p0.weights.get(n)![i])), 'the merged adapters changed the weights');
  assert.ok(run.metrics.some((x) => x.values.reward > 0), 'length rewards are positive');
});

test('under LoRA a rollout samples from the trained adapters (fed to a generator compiled once): its policy log-probabilities are those of the merged weights', async (t) => {
  const model = await loadModel(join(root, 'pi0'));
  const ctx = { seed: 5, dir: root, checkpoint: null, provider: 'cpu', threads: 1, signal: new AbortController().signal, stopRequested: () => false, data: async () => data, progress: () => {}, metric: () => {}, log: () => {}, checkpointed: async () => {} } satisfies StageContext;
  const pu = await PolicyUpdate.create(ctx, rlStage.parse({ policy: 'pi0', reward: 'marker', maxNewTokens: 12, promptsPerStep: 2, k: 2, adaptation: 'lora', loraRank: 4 }), model, model, data.train.map((d) => d.prompt));
  try {
    // A reward every sample gets a different value of (the marker is too rare for a few samples): nonzero advantages.
    const longer: RewardFunction = { describe: 'length', score: async (xs) => xs.map((x) => x.response.length), release: async () => {} };
    for (let s = 0; s < 3; s++) await pu.trainer.step((await pu.next(s, longer)).feeds, 1e-2);
    const r = await pu.rollout(3);
    const merged = await Generator.create(model.family, model.config, pu.weights(), { provider: 'cpu', threads: 1 });
    try {
      const own = await merged.score(r.rows.map((x) => x.ids.slice(0, x.start)), r.rows.map((x) => x.ids.slice(x.start)));
      own.forEach((s, j) => assert.ok(Math.abs(s.sum - r.logpPolicy[j]) <= 1e-5 * Math.max(1, Math.abs(s.sum)), `row ${j}: rollout ${r.logpPolicy[j]}, merged weights ${s.sum}`));
    } finally {
      await merged.release();
    }
    // The reference is pi_0, the policy's start: stale adapters (B = 0) would give its log-probabilities.
    const moved = Math.max(...r.logpPolicy.map((lp, j) => Math.abs(lp - r.logpRef[j])));
    t.diagnostic(`largest |log pi - log ref| of the rollout: ${moved.toFixed(4)}`);
    assert.ok(moved > 1e-2, `the adapters moved the policy (${moved})`);
  } finally {
    await pu.release();
  }
});
