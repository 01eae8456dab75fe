// Running a stage directly, without the store or the job runner: for tests, which need a
// stage's outcome, its metrics, and a way to stop it part-way to test resumption.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject } from '../../../db/json.ts';
import type { Demonstrations } from '../data.ts';
import type { LengthMode } from '../reward-function.ts';
import type { Artifact, Stage, StageInputs, StageOutcome } from '../stage.ts';

export interface TestRun {
  outcome: StageOutcome;
  artifact: Artifact;
  metrics: { step: number; values: Record<string, number> }[];
  checkpoint: string | null;
  logs: string[];
}

export interface TestRunOptions {
  dir: string;
  data: Demonstrations;
  seed?: number;
  /** Asks the stage to stop once it has reported this much progress. */
  stopAtProgress?: number;
  /** Continues from this checkpoint (from an earlier TestRun). */
  checkpoint?: string | null;
  /** ORT intra-op threads (default 1). */
  threads?: number;
  /** The id of the stage in artifacts it produces (default: its kind). */
  id?: string;
}

export async function runStage<C extends JsonObject>(stage: Stage<C>, raw: JsonObject, inputs: StageInputs, o: TestRunOptions): Promise<TestRun> {
  await mkdir(o.dir, { recursive: true });
  const config = stage.parse(raw);
  const metrics: TestRun['metrics'] = [];
  const logs: string[] = [];
  let checkpoint = o.checkpoint ?? null, stop = false;
  const controller = new AbortController();
  const outcome = await stage.run(
    {
      seed: o.seed ?? 0, dir: o.dir, checkpoint, provider: 'cpu', threads: o.threads ?? 1, signal: controller.signal,
      stopRequested: () => stop,
      data: async () => o.data,
      progress: (step) => {
        if (o.stopAtProgress !== undefined && step >= o.stopAtProgress) stop = true;
      },
      metric: (step, values) => void metrics.push({ step, values }),
      log: (text) => void logs.push(text),
      checkpointed: async (file) => {
        checkpoint = file;
      },
    },
    config,
    inputs,
  );
  return { outcome, artifact: { type: stage.produces, dir: o.dir, stage: o.id ?? stage.kind }, metrics, checkpoint, logs };
}

/** pi_0 as an input artifact. */
export const pi0 = (dir: string): Artifact => ({ type: 'model', dir, stage: 'pi0' });

/** A samples artifact written by hand in `root/id`: texts[i][k], each text's length in characters as its token count. */
export function handSamples(root: string, id: string, texts: string[][]): Artifact {
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true });
  const lines = texts.flatMap((row, i) => row.map((text, k) => JSON.stringify({ i, k, prompt: `prompt ${i}`, text, tokens: text.length, finish: 'eos' })));
  writeFileSync(join(dir, 'samples.jsonl'), `${lines.join('\n')}\n`);
  writeFileSync(join(dir, 'artifact.json'), JSON.stringify({ type: 'samples', model: 'm', split: 'eval', n: texts[0].length }));
  return { type: 'samples', dir, stage: id };
}

/** A reward artifact in `root/id` whose reward is a length heuristic (computable by hand); a judge's accuracy 0.75. */
export function lengthReward(root: string, id: string, mode: LengthMode, target: number): Artifact {
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'artifact.json'), JSON.stringify({ type: 'reward', reward: 'length', mode, target, cvAccuracy: 0.75 }));
  return { type: 'reward', dir, stage: id };
}
