// Stage `judge` (DESIGN.md §3): the gold judge, a Bradley-Terry scorer on the chosen vs
// rejected pairs of ALL prompts (train and eval), frozen afterwards and never trained on.
// Its trustworthiness is reported as a K-fold cross-validated pair accuracy: for each fold,
// a scorer trained on the other folds orders the fold's pairs; then the final judge is
// trained on every pair. Each of the K + 1 trainings is a phase with its own folder and
// checkpoint; a finished fold leaves result.json, so a resumed run skips it.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JsonObject } from '../../../db/json.ts';
import Type from 'typebox';
import { flag, integer } from '../../schema/fields.ts';
import { parseSettings, settingsSchema, withAdaptation } from './common.ts';
import { loadModel } from '../lm.ts';
import { saveScorer, scorerReward } from '../scorer.ts';
import { modelDir, one, writeArtifactDetails, type Stage, type StageContext } from '../stage.ts';
import { pairAccuracy, preferencePrompts, SCORER_TRAIN_SETTINGS, scorerDataset, scorerSteps, trainScorer, type ScorerTrainConfig } from './reward.ts';

export type JudgeConfig = ScorerTrainConfig & { folds: number; allPrompts?: true };

/** The fold of a prompt: a stable hash, so that both responses of a pair stay together. */
export function foldOf(prompt: string, folds: number): number {
  return createHash('sha256').update(`afd-judge-fold\n${prompt}`, 'utf8').digest().readUInt32BE(0) % folds;
}

/**
 * A view of the stage's context for one phase: its own folder (so its own checkpoint file),
 * the stage's checkpoint only when it is this phase's, steps offset into the whole run.
 */
function phaseContext(ctx: StageContext, dir: string, offset: number, total: number): StageContext {
  return {
    seed: ctx.seed, dir, provider: ctx.provider, threads: ctx.threads, signal: ctx.signal,
    checkpoint: ctx.checkpoint !== null && dirname(ctx.checkpoint) === dir ? ctx.checkpoint : null,
    stopRequested: () => ctx.stopRequested(),
    data: () => ctx.data(),
    progress: (step, _total, unit) => ctx.progress(offset + step, total, unit),
    metric: (step, values) => ctx.metric(offset + step, values),
    log: (text) => ctx.log(text),
    checkpointed: (file, step) => ctx.checkpointed(file, offset + step),
  };
}

interface FoldResult {
  correct: number;
  pairs: number;
}

const SETTINGS = settingsSchema({ ...SCORER_TRAIN_SETTINGS, folds: integer(2, 20, { default: 2 }), allPrompts: Type.Optional(flag({ description: 'default false' })) });

export const judgeStage: Stage<JudgeConfig> = {
  kind: 'judge',
  summary: 'gold judge: Bradley-Terry on the chosen vs rejected pairs of all prompts, with a K-fold cross-validated accuracy',
  produces: 'reward',
  inputs: { backbone: { types: ['model'] } },

  // allPrompts: every dialogue of the source, even when the experiment's maxTrain/maxEval
  // give the methods fewer (a judge never trains the methods, so it may see them all).
  // Absent when false, so that judges stored before the option still match their definition.
  settings: SETTINGS,
  parse(raw, where) {
    const { allPrompts, ...c } = withAdaptation(parseSettings('judge', SETTINGS, raw, where));
    return { ...c, ...(allPrompts === true ? { allPrompts } : {}) };
  },

  async run(ctx, config, inputs) {
    const data = await ctx.data();
    const prompts = preferencePrompts(config.allPrompts === true ? data.all : [...data.train, ...data.eval]);
    if (prompts.length === 0) throw new Error('The gold judge needs chosen/rejected pairs, but no demonstration has a rejected response; use data with a rejected column (e.g. hh-harmless).');
    const K = config.folds;
    const folds = Array.from({ length: K }, (_, k) => ({
      train: scorerDataset(prompts.filter((p) => foldOf(p.prompt, K) !== k)),
      test: scorerDataset(prompts.filter((p) => foldOf(p.prompt, K) === k)),
    }));
    const empty = folds.findIndex((f) => f.train.pairs.length === 0 || f.test.pairs.length === 0);
    if (empty >= 0) throw new Error(`${prompts.length} chosen/rejected pairs are too few for ${K} folds (fold ${empty} or the rest has none); lower folds or add data.`);
    const all = scorerDataset(prompts);
    const steps = [...folds.map((f) => scorerSteps(f.train, 'bt', config)), scorerSteps(all, 'bt', config)];
    const total = steps.reduce((a, b) => a + b, 0);
    const model = await loadModel(modelDir(one(inputs, 'backbone')));
    const runtime = { provider: ctx.provider, threads: ctx.threads };

    const results: FoldResult[] = [];
    let offset = 0;
    for (let k = 0; k < K; k++) {
      const dir = join(ctx.dir, `fold-${k}`), file = join(dir, 'result.json');
      await mkdir(dir, { recursive: true });
      if (existsSync(file)) results.push(JSON.parse(await readFile(file, 'utf8')) as FoldResult);
      else {
        const r = await trainScorer(phaseContext(ctx, dir, offset, total), model, config, 'bt', folds[k].train);
        if (r.status === 'stopped') return { status: 'stopped', step: offset + r.step };
        const reward = await scorerReward(model, r.backbone, r.head, r.maxLength, runtime, `judge fold ${k}`);
        let scores: number[];
        try {
          scores = await reward.score(folds[k].test.items.map((x) => ({ prompt: x.prompt, response: x.response })));
        } finally {
          await reward.release();
        }
        const pairs = folds[k].test.pairs.length;
        const result: FoldResult = { correct: Math.round(pairAccuracy(scores, folds[k].test.pairs) * pairs), pairs };
        await writeFile(file, `${JSON.stringify(result)}\n`);
        results.push(result);
      }
      ctx.log(`fold ${k + 1}/${K}: ${results[k].correct} of ${results[k].pairs} held-out pairs ordered as chosen > rejected`);
      offset += steps[k];
    }
    const cvAccuracy = results.reduce((a, r) => a + r.correct, 0) / results.reduce((a, r) => a + r.pairs, 0);
    ctx.log(`cross-validated pair accuracy of the gold judge: ${(100 * cvAccuracy).toFixed(1)}% over ${prompts.length} pairs`);

    const finalDir = join(ctx.dir, 'final');
    await mkdir(finalDir, { recursive: true });
    const r = await trainScorer(phaseContext(ctx, finalDir, offset, total), model, config, 'bt', all);
    if (r.status === 'stopped') return { status: 'stopped', step: offset + r.step };
    const dir = await saveScorer(ctx.dir, model, r.backbone, r.head, r.maxLength);
    ctx.metric(total, { gold_judge_accuracy: cvAccuracy });
    const details: JsonObject = { type: 'reward', reward: 'scorer', dir, loss: 'bt', source: 'gold judge', cvAccuracy, gold_judge_accuracy: cvAccuracy, folds: K, pairs: prompts.length };
    await writeArtifactDetails(ctx.dir, details);
    return {
      status: 'done',
      summary: { gold_judge_accuracy: cvAccuracy, fold_accuracies: results.map((f) => f.correct / f.pairs), pairs: prompts.length, folds: K, steps: total },
    };
  },
};
