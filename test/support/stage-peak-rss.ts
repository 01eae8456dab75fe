// A child process that runs one AfD stage and prints its peak RSS as JSON: the measured
// side of test/memory-estimate.test.ts (a process of its own, so the peak is the stage's).
// Argument: { stage, inputs: { field: model folder }, settings, dir, rows, words }; the
// demonstrations are `rows` prompts with responses of `words` words, long enough that
// every batch row fills the stage's maxLength.
import { resourceUsage } from 'node:process';
import { demonstrations } from '../../main/stages/data.ts';
import type { Artifact } from '../../main/stages/stage.ts';
import { runStage } from '../../main/stages/kinds/testing.ts';
import { STAGES } from '../../main/stages/kinds/index.ts';

const a = JSON.parse(process.argv[2]) as { stage: string; inputs: Record<string, string>; settings: Record<string, string | number>; dir: string; rows: number; words: number };
const WORDS = 'the cat sat on a mat and then it rained over the old town while we walked home slowly'.split(' ');
const text = (n: number, shift: number): string => Array.from({ length: n }, (_, i) => WORDS[(i * 7 + shift) % WORDS.length]).join(' ');
const demos = Array.from({ length: a.rows }, (_, i) => ({ prompt: `Human: ${text(20, i)}\n\nAssistant:`, response: ` ${text(a.words, i + 3)}`, rejected: ` ${text(a.words, i + 5)}` }));
const inputs = Object.fromEntries(Object.entries(a.inputs).map(([field, dir]): [string, Artifact] => [field, { type: 'model', dir, stage: 'pi0' }]));
const r = await runStage(STAGES[a.stage], a.settings, inputs, { dir: a.dir, data: demonstrations(demos, demos.slice(0, 2)), threads: 2 });
if (r.outcome.status !== 'done') throw new Error(`the stage stopped at step ${r.outcome.step}`);
// maxRSS is in kilobytes.
console.log(JSON.stringify({ peakBytes: resourceUsage().maxRSS * 1024, steps: r.metrics.length }));
