// The worker side of `afd-stage` (see afd-stage.ts): resolves the provider, gives the
// stage its context, and reports its outcome with the folder its artifact is in.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chooseProvider } from '../../native-models/runtime/providers.ts';
import { loadDemonstrations, type Demonstrations } from '../stages/data.ts';
import { checkStageMemory } from '../stages/memory-check.ts';
import { STAGES } from '../stages/kinds/index.ts';
import type { WorkerRun } from './kind.ts';
import { stageData, stageInputs, type AfdStageConfig } from './afd-stage.ts';

export const run: WorkerRun<AfdStageConfig> = async (ctx) => {
  const cfg = ctx.config;
  const stage = STAGES[cfg.stage];
  const choice = await chooseProvider(cfg.provider === 'auto' ? {} : { force: cfg.provider });
  ctx.log(`execution provider: ${choice.provider} (${choice.reason})`);
  ctx.started({ provider: choice.provider });
  let data: Promise<Demonstrations> | undefined;
  const loadData = (): Promise<Demonstrations> => (data ??= loadDemonstrations(stageData(cfg)));
  // Sized before it starts: a stage that cannot fit is refused with what to lower, not killed halfway.
  await checkStageMemory({ id: cfg.id, kind: cfg.stage, settings: cfg.settings, inputs: stageInputs(cfg), provider: choice.provider, data: loadData, log: (text) => ctx.log(text) });
  const outcome = await stage.run(
    {
      seed: cfg.seed, dir: ctx.runDir, checkpoint: ctx.checkpoint, provider: choice.provider, threads: cfg.threads ?? undefined, signal: ctx.signal,
      stopRequested: () => ctx.stopRequested !== null,
      data: loadData,
      progress: (step, total, unit) => ctx.progress(step, total, unit),
      metric: (step, values) => ctx.metric(step, values),
      log: (text) => ctx.log(text),
      checkpointed: async (file, step) => {
        await ctx.flush(); // the store has the metrics of every step the checkpoint holds
        ctx.checkpointWritten(file, step);
      },
    },
    cfg.settings,
    stageInputs(cfg),
  );
  if (outcome.status === 'stopped') return outcome;
  const result = { ...outcome.summary, dir: ctx.runDir, provider: choice.provider };
  // A trained model's (or reward model's) family, for its row in the store.
  const family = (folder: string): string => String(JSON.parse(readFileSync(join(ctx.runDir, folder, 'config.json'), 'utf8')).model_type);
  if (stage.produces === 'model') return { status: 'done', result: { ...result, family: family('model') } };
  if (stage.produces === 'reward' && existsSync(join(ctx.runDir, 'scorer', 'config.json'))) return { status: 'done', result: { ...result, scorer: true, family: family('scorer') } };
  return { status: 'done', result };
};
