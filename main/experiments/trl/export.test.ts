// `afd export trl` and `afd import results` without Python: what the project holds (the
// studio's data, settings and seeds, the reasons for every stage left out, run.sh's order),
// and the import of outputs shaped as the project's scripts write them (a copied model, a
// sequence classifier made here, samples, Best-of-N picks): the runs the driver keeps, the
// lineage, the generations, the scorer, and the results table once the studio has run the
// stages that were not exported. A bad output leaves the store as it was.
// main/experiments/trl/project.test.ts runs a real project with TRL.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { openDatabase, type StudioDatabase } from '../../../db/database.ts';
import { ExperimentStore } from '../../../db/experiments.ts';
import { GenerationStore } from '../../../db/generations.ts';
import type { JsonObject } from '../../../db/json.ts';
import { ModelStore } from '../../../db/models.ts';
import { RunStore } from '../../../db/runs.ts';
import { fromFloat32, readSafetensors, writeSafetensors } from '../../../native-models/runtime/safetensors.ts';
import { tempFiles } from '../../../test/support/temp-dir.ts';
import { StudioFiles } from '../../jobs/files.ts';
import { JobRunner } from '../../jobs/runner.ts';
import { loadDemonstrations } from '../../stages/data.ts';
import { ExperimentDriver, stageRunSeed, staleness } from '../driver.ts';
import { parseExperiment } from '../experiment.ts';
import { experimentResults } from '../results.ts';
import { loadScorerReward } from '../../stages/scorer.ts';
import { STAGES } from '../../stages/kinds/index.ts';
import { heldOutPrompt } from '../../stages/kinds/reward.ts';
import { buildToyModel, toyDemonstrations } from '../../stages/toy.ts';
import { exportTrl, MANIFEST, type TrlManifest } from './export.ts';
import { importTrlResults } from './import.ts';

const tmp = tempFiles('trl-export');
const pi0 = join(tmp.dir, 'pi0');
const dataFile = join(tmp.dir, 'toy.jsonl');

/** The toy demonstrations with a rejected response (the marker left out) for the judge and the baselines. */
function writeData(count: number): void {
  const d = toyDemonstrations(count, 1);
  writeFileSync(dataFile, [...d.train, ...d.eval].map((x) => JSON.stringify({ prompt: x.prompt, chosen: x.response, rejected: x.response.replace(' Have a nice day.', '') })).join('\n') + '\n');
}

const definition = (): JsonObject => ({
  name: 'trl-toy', seed: 4, model: pi0, data: { source: dataFile, evalFraction: 0.2 }, threads: 1,
  stages: [
    { id: 'judge', kind: 'judge', epochs: 1, batch: 8 },
    { id: 'sft', kind: 'sft', epochs: 1, batch: 4, adaptation: 'lora', loraRank: 4 },
    { id: 'init-train', kind: 'sample', model: 'pi0', split: 'train', n: 1, maxNewTokens: 6 },
    { id: 'sft-train', kind: 'sample', model: 'sft', split: 'train', n: 1, maxNewTokens: 6 },
    { id: 'rm', kind: 'reward', positive: 'sft-train', negative: 'init-train', epochs: 1, heldOut: 0.2 },
    { id: 'density-ratio', kind: 'density-ratio', policy: 'sft', base: 'pi0' },
    { id: 'rl-ref', kind: 'rl', policy: 'sft', reference: 'pi0', reward: 'rm', steps: 3 },
    { id: 'sft-eval', kind: 'sample', model: 'sft', split: 'eval', n: 2, maxNewTokens: 6 },
    { id: 'sft-ref', kind: 'sample', model: 'sft', split: 'eval', n: 1, maxNewTokens: 6 },
    { id: 'bon', kind: 'bon', samples: 'sft-eval', reward: 'rm', ns: [1, 2] },
    { id: 'bon-dr', kind: 'bon', samples: 'sft-eval', reward: 'density-ratio', ns: [1, 2] },
    { id: 'eval', kind: 'eval', judge: 'judge', reference: 'sft-ref', candidates: ['sft-eval', 'bon', 'bon-dr'] },
  ],
});

async function studio(name: string): Promise<{ db: StudioDatabase; files: StudioFiles }> {
  const file = join(tmp.dir, `${name}.db`);
  return { db: await openDatabase(file), files: StudioFiles.forDatabase(file) };
}

const readJsonl = (file: string): JsonObject[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JsonObject);

describe('afd export trl and afd import results (no Python)', { timeout: 300_000 }, () => {
  before(async () => {
    await buildToyModel(pi0, { steps: 30 });
    writeData(30);
  });

  it('writes the studio\'s data, settings and seeds, and says why each stage left out is', async () => {
    const { db, files } = await studio('export');
    const def = parseExperiment(definition());
    const out = join(tmp.dir, 'project');
    const m = await exportTrl(db, files, def, { out, gpus: 2 });
    assert.deepEqual(JSON.parse(readFileSync(join(out, MANIFEST), 'utf8')), JSON.parse(JSON.stringify(m)));
    const why = Object.fromEntries(m.stages.map((s) => [s.id, s.exported ? s.script : s.why]));
    assert.deepEqual(Object.keys(why), def.stages.map((s) => s.id), 'every stage is listed, in order');
    assert.equal(why.sft, 'sft.py');
    assert.equal(why.rm, 'reward.py');
    assert.equal(why.bon, 'bon.py');
    assert.match(why.judge!, /gold judge/);
    assert.match(why.eval!, /evaluation/);
    assert.match(why['density-ratio']!, /no TRL counterpart/);
    assert.match(why['rl-ref']!, /starting policy as the KL reference.*'pi0'/);
    assert.match(why['bon-dr']!, /its reward 'density-ratio' is not exported/);

    // The data: exactly the studio's split, prompts and responses.
    const demos = await loadDemonstrations({ ...def.data, chatTemplateModel: pi0 });
    assert.deepEqual(readJsonl(join(out, 'data/train.jsonl')), demos.train.map((d) => ({ prompt: d.prompt, completion: d.response })));
    assert.deepEqual(readJsonl(join(out, 'data/eval.jsonl')), demos.eval.map((d) => ({ prompt: d.prompt })));
    assert.deepEqual(readJsonl(join(out, 'data/preferences.jsonl')), demos.train.map((d) => ({ prompt: d.prompt, chosen: d.response, rejected: d.rejected! })));

    // Each exported stage's settings: the studio's parse (every default), its seed, its inputs as project paths.
    for (const spec of def.stages.filter((s) => why[s.id]?.endsWith('.py'))) {
      const s = JSON.parse(readFileSync(join(out, 'stages', `${spec.id}.json`), 'utf8')) as JsonObject;
      const { id: _id, kind: _kind, ...settings } = spec;
      assert.deepEqual(s.settings, STAGES[spec.kind].parse(settings), `${spec.id}: the parsed settings`);
      assert.equal(s.seed, stageRunSeed(def, spec), `${spec.id}: the seed`);
    }
    const rm = JSON.parse(readFileSync(join(out, 'stages/rm.json'), 'utf8')) as JsonObject;
    assert.deepEqual(rm.inputs, { backbone: 'models/pi0', positive: 'outputs/sft-train', negative: 'outputs/init-train' });
    assert.deepEqual(rm.heldOut, demos.train.flatMap((d, i) => (heldOutPrompt(d.prompt, 0.2) ? [i] : [])));
    assert.ok((rm.heldOut as number[]).length > 0, 'some prompts are held out');
    assert.equal((JSON.parse(readFileSync(join(out, 'stages/bon.json'), 'utf8')) as JsonObject).rewardMaxLength, 256);

    // pi_0 copied; scripts; run.sh in order with consecutive sample stages in one process.
    assert.deepEqual(readFileSync(join(out, 'models/pi0/model.safetensors')), readFileSync(join(pi0, 'model.safetensors')));
    assert.deepEqual(readdirSync(join(out, 'scripts')).sort(), ['bon.py', 'common.py', 'dpo.py', 'reward.py', 'rl.py', 'sample.py', 'sft.py']);
    const steps = readFileSync(join(out, 'run.sh'), 'utf8').split('\n').filter((l) => l.startsWith('step '));
    assert.deepEqual(steps, ['step "$LAUNCH" sft.py sft', 'step "$PYTHON" sample.py init-train sft-train', 'step "$LAUNCH" reward.py rm', 'step "$PYTHON" sample.py sft-eval sft-ref', 'step "$PYTHON" bon.py bon']);
    assert.match(readFileSync(join(out, 'accelerate.yaml'), 'utf8'), /distributed_type: MULTI_GPU\n[^]*num_processes: 2\n/);
    assert.match(readFileSync(join(out, 'requirements.txt'), 'utf8'), /^trl==\d+\.\d+\.\d+$/m);
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    for (const id of ['judge', 'eval', 'density-ratio', 'rl-ref', 'bon-dr']) assert.ok(readme.includes(`- **${id}**`), `the README lists ${id} as not exported`);

    await assert.rejects(exportTrl(db, files, def, { out }), /already exists/);
    // pi_0 named for the cluster instead of copied.
    const byRef = join(tmp.dir, 'project-ref');
    await exportTrl(db, files, def, { out: byRef, pi0: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
    assert.equal(existsSync(join(byRef, 'models')), false);
    assert.equal((JSON.parse(readFileSync(join(byRef, 'stages/sft.json'), 'utf8')) as { inputs: JsonObject }).inputs.model, 'HuggingFaceTB/SmolLM2-135M-Instruct');
    db.close();
  });

  it('imports outputs as finished runs the driver keeps; the studio runs the rest and fills the results table', async () => {
    const { db, files } = await studio('import');
    const def = parseExperiment(definition());
    const original = new ExperimentStore(db).insert({ name: def.name, definition: def as unknown as JsonObject });
    const out = join(tmp.dir, 'project-import');
    const m: TrlManifest = await exportTrl(db, files, def, { out, experimentId: original.id });
    const demos = await loadDemonstrations({ ...def.data, chatTemplateModel: pi0 });
    await fakeOutputs(out, demos.train.map((d) => d.prompt), demos.eval.map((d) => d.prompt));
    assert.equal(m.experiment.id, original.id);

    const r = await importTrlResults(db, files, out);
    assert.deepEqual(r.imported.map((s) => s.id), ['sft', 'init-train', 'sft-train', 'rm', 'sft-eval', 'sft-ref', 'bon']);
    assert.deepEqual(r.local.map((s) => s.id), ['judge', 'density-ratio', 'rl-ref', 'bon-dr', 'eval']);
    const e = new ExperimentStore(db).get(r.experimentId)!;
    assert.equal(e.name, 'trl-toy (trl)');
    assert.deepEqual(parseExperiment(e.definition).origin, { experimentId: original.id, name: 'trl-toy', project: out });

    // Models with their lineage (pi_0 -> sft -> the reward model), samples as generations.
    const models = new ModelStore(db).list();
    const sft = models.find((x) => x.name === 'trl-toy (trl)/sft')!, rmModel = models.find((x) => x.name === 'trl-toy (trl)/rm')!;
    const pi0Row = models.find((x) => x.path === pi0)!;
    assert.equal(sft.parentId, pi0Row.id);
    assert.equal(rmModel.parentId, pi0Row.id);
    const runs = new RunStore(db);
    const sftEval = r.imported.find((s) => s.id === 'sft-eval')!;
    const gens = new GenerationStore(db).listByRun(sftEval.runId);
    assert.equal(gens.length, demos.eval.length * 2);
    assert.ok(gens.every((g) => g.modelId === sft.id), 'the SFT model sampled them');
    const initGens = new GenerationStore(db).listByRun(r.imported.find((s) => s.id === 'init-train')!.runId);
    assert.ok(initGens.length > 0 && initGens.every((g) => g.modelId === pi0Row.id));

    // The reward model as the studio's scorer: the head read at the last response token.
    const reward = await loadScorerReward(join(files.runDir(r.imported.find((s) => s.id === 'rm')!.runId), 'scorer'), { provider: 'cpu', threads: 1 });
    const scores = await reward.score([{ prompt: demos.eval[0].prompt, response: ' cats are good.' }]);
    await reward.release();
    assert.ok(Number.isFinite(scores[0]) && scores[0] !== 0);

    // The driver keeps every imported run (its config is what a studio run of the stage has).
    const runner = await JobRunner.open({ db, files });
    const byId = new Map(r.imported.map((s) => [s.id, s.runId]));
    const driver = ExperimentDriver.start(db, runner, e.definition, { experimentId: r.experimentId });
    const outcome = await driver.done;
    await runner.close();
    assert.equal(outcome.status, 'done', outcome.error);
    for (const s of outcome.stages) if (byId.has(s.id)) assert.equal(s.runId, byId.get(s.id), `${s.id} was kept`);
    const sftRun = runs.get(byId.get('sft')!)!;
    assert.equal(sftRun.provider, 'trl');
    assert.equal(staleness(def.stages[1], sftRun.config, sftRun.config, new Set()), null);
    const table = experimentResults(db, files, r.experimentId)!;
    assert.deepEqual(table.rows.map((x) => `${x.method}${x.n === undefined ? '' : `@${x.n}`}`), ['sft-eval', 'bon@1', 'bon@2', 'bon-dr@1', 'bon-dr@2']);
    const selection = JSON.parse(readFileSync(join(files.runDir(byId.get('bon')!), 'selection.json'), 'utf8')) as { samples: string; picks: Record<string, number[]>; klBound: Record<string, number> };
    assert.equal(selection.samples, files.runDir(byId.get('sft-eval')!), 'the picks index the imported samples');
    assert.deepEqual(selection.picks['2'], demos.eval.map((_, i) => (i % 2 === 0 ? 1 : 0)));
    assert.equal(table.rows.find((x) => x.method === 'bon' && x.n === 2)!.kl_estimate, Math.log(2) - 0.5);
    db.close();
  });

  it('leaves the store as it was when an output is wrong, and says which file', async () => {
    const { db, files } = await studio('bad');
    const def = parseExperiment(definition());
    const out = join(tmp.dir, 'project-bad');
    await exportTrl(db, files, def, { out });
    const demos = await loadDemonstrations({ ...def.data, chatTemplateModel: pi0 });
    await fakeOutputs(out, demos.train.map((d) => d.prompt), demos.eval.map((d) => d.prompt));
    const file = join(out, 'outputs/sft-eval/samples.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace(JSON.stringify(demos.eval[1].prompt), JSON.stringify('another prompt')));
    const before = { experiments: new ExperimentStore(db).list().length, models: new ModelStore(db).list().length, runs: new RunStore(db).list().length };
    await assert.rejects(importTrlResults(db, files, out), (err: Error) => err.message.startsWith(`${file}:`) && /prompt 1 is not the experiment's eval prompt 1/.test(err.message));
    assert.deepEqual({ experiments: new ExperimentStore(db).list().length, models: new ModelStore(db).list().length, runs: new RunStore(db).list().length }, before);
    assert.deepEqual(existsSync(join(files.root, 'runs')) ? readdirSync(join(files.root, 'runs')) : [], [], 'no run folder is left');
    await assert.rejects(importTrlResults(db, files, tmp.dir), /has no afd-export\.json; point at a folder that `afd export trl` wrote/);
    db.close();
  });
});

/**
 * The outputs the project's scripts would write for sft (a model folder: pi_0's), the
 * sample stages, rm (a sequence classifier: pi_0's weights and a head) and bon.
 */
async function fakeOutputs(out: string, train: readonly string[], evalPrompts: readonly string[]): Promise<void> {
  const dir = (id: string): string => {
    mkdirSync(join(out, 'outputs', id), { recursive: true });
    writeFileSync(join(out, 'outputs', id, 'stage.json'), JSON.stringify({ id, seconds: 1, metrics: { held_out_accuracy: 0.5 } }));
    return join(out, 'outputs', id);
  };
  cpSync(pi0, join(dir('sft'), 'model'), { recursive: true });
  const samples = (id: string, prompts: readonly string[], n: number): void => {
    writeFileSync(join(dir(id), 'samples.jsonl'), prompts.flatMap((prompt, i) => Array.from({ length: n }, (_, k) => `${JSON.stringify({ i, k, prompt, text: ` ${id} reply ${i} ${k}.`.repeat(k + 1), tokens: 5 * (k + 1), finish: 'eos' })}\n`)).join(''));
  };
  samples('init-train', train, 1);
  samples('sft-train', train, 1);
  samples('sft-eval', evalPrompts, 2);
  samples('sft-ref', evalPrompts, 1);

  const rm = join(dir('rm'), 'model');
  cpSync(pi0, rm, { recursive: true });
  const config = JSON.parse(readFileSync(join(pi0, 'config.json'), 'utf8')) as JsonObject;
  writeFileSync(join(rm, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2ForSequenceClassification'], id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 }, pad_token_id: config.eos_token_id }));
  const D = config.n_embd as number;
  const st = await readSafetensors(join(pi0, 'model.safetensors'));
  const head = Float32Array.from({ length: D }, (_, i) => Math.sin(i + 1) * 0.5);
  await writeSafetensors(join(rm, 'model.safetensors'), new Map([...st.tensors, ['score.weight', fromFloat32(head, [1, D])]]));

  const rewards = evalPrompts.map((_, i) => [i % 2 === 0 ? 0.1 : 0.3, 0.2]);
  writeFileSync(join(dir('bon'), 'selection.json'), JSON.stringify({ ns: [1, 2], picks: { 1: rewards.map(() => 0), 2: rewards.map((r) => (r[1] > r[0] ? 1 : 0)) }, rewards }));
}
