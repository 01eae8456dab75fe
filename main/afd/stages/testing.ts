// Running a stage directly, without the store or the job runner: for tests, which need a
// stage's outcome, its metrics, and a way to stop it part-way to test resumption.
import { mkdir } from 'node:fs/promises';
import type { JsonObject } from '../../../db/json.ts';
import type { Demonstrations } from '../data.ts';
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
