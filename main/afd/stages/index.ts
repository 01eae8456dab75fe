// Every AfD stage by kind (DESIGN.md §2): what an experiment's `kind:` may name.
import type { Stage } from '../stage.ts';
import { bonLengthStage, bonStage } from './bon.ts';
import { evalStage } from './eval.ts';
import { sampleStage } from './sample.ts';
import { sftStage } from './sft.ts';

export const STAGES: Readonly<Record<string, Stage>> = Object.fromEntries(
  ([sftStage, sampleStage, bonStage, bonLengthStage, evalStage] as Stage[]).map((s) => [s.kind, s]),
);
