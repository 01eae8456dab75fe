// `afd export trl`: an experiment as a self-contained Python project for Hugging Face TRL on
// accelerate, for models that outgrow one machine (issue 17). The project holds the
// experiment's data in TRL's dataset formats (exactly the studio's prompts and responses,
// split as the studio splits them), one script per stage kind that has a TRL counterpart
// (project/*.py.in, copied as they are), each stage's settings as the studio parsed them
// (stages/<id>.json: the same seeds, learning rates, epochs, batches and lengths), an
// accelerate config, run.sh and a README. Stages without a counterpart are listed in the
// README and the manifest with the reason, never dropped silently; `afd import results`
// (import.ts) brings the outputs back and the studio runs those stages itself.
import { cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { StudioDatabase } from '../../../db/database.ts';
import type { JsonObject } from '../../../db/json.ts';
import type { StudioFiles } from '../../jobs/files.ts';
import type { ExperimentDefinition, StageSpec } from '../contract.ts';
import { loadDemonstrations, type Demonstrations } from '../../stages/data.ts';
import { initialModelArtifact, resolveDataSpec, stageRunSeed } from '../driver.ts';
import { DEMOS, inputRefs, PI0 } from '../experiment.ts';
import { TURN_STOPS } from '../../stages/lm.ts';
import { STAGES } from '../../stages/kinds/index.ts';
import { heldOutPrompt, preferencePrompts } from '../../stages/kinds/reward.ts';

/** The manifest's name in an exported project, and its format. */
export const MANIFEST = 'afd-export.json';
export const MANIFEST_FORMAT = 'afd-studio/trl-export@1';

/** The pinned packages of the generated project (and of the CI test that runs one: test/requirements.txt). */
export const PINNED = { transformers: '5.24.0', trl: '1.16.0', accelerate: '1.16.0', datasets: '5.2.0', peft: '0.21.2' } as const;

/** The script of each stage kind with a TRL counterpart. */
export const TRL_SCRIPTS: Readonly<Record<string, string>> = {
  sft: 'sft.py', sample: 'sample.py', reward: 'reward.py', 'pref-reward': 'reward.py', bon: 'bon.py', dpo: 'dpo.py', spin: 'dpo.py', rl: 'rl.py',
};
const SCRIPT_FILES = ['common.py', ...new Set(Object.values(TRL_SCRIPTS))];
/** Scripts that run as one plain process (sampling and scoring); the others train under accelerate launch. */
const SINGLE_PROCESS = new Set(['sample.py', 'bon.py']);

/** Why a kind has no exported counterpart. */
const NO_COUNTERPART: Readonly<Record<string, string>> = {
  judge: 'the gold judge (cross-validated Bradley-Terry) is the studio\'s yardstick; the studio trains it after the import',
  eval: 'the gold-judge evaluation is the studio\'s; it runs after the import and fills the results table',
  'density-ratio': 'a reward computed from two models\' log-probabilities, with no TRL counterpart; the studio computes it after the import',
  'bon:length': 'Best-of-N by length needs no GPU; the studio runs it after the import',
  airl: 'adversarial IRL (a discriminator trained between policy updates) has no TRL counterpart',
  extrapolate: 'weight extrapolation has no TRL counterpart; the studio runs it after the import',
  pretrain: 'pretraining the embedded model from scratch has no TRL counterpart',
  'reward:endogenous': 'the endogenous reward is read off a model\'s own logits, with no training and no TRL counterpart; the studio computes it after the import',
  ditto: 'DITTO (iterated DPO over the policy\'s own samples, with replay) has no TRL counterpart',
};

export interface ExportedStage {
  id: string;
  kind: string;
  exported: boolean;
  /** The script (exported stages) or the reason (the others). */
  script?: string;
  why?: string;
  /** Where the exported stage writes its output, relative to the project. */
  output?: string;
}

export interface TrlManifest {
  format: typeof MANIFEST_FORMAT;
  exportedAt: string;
  experiment: { id: number | null; name: string };
  definition: ExperimentDefinition;
  /** Where the project finds pi_0: its copy (models/pi0) or the reference given at export. */
  pi0: string;
  gpus: number;
  data: { train: number; eval: number; preferences: number };
  stages: ExportedStage[];
}

export interface TrlExportOptions {
  /** The project's folder (created; it must not exist or be empty). */
  out: string;
  /** The stored experiment's id, when the definition came from the store. */
  experimentId?: number | null;
  /** Where the project's machines find pi_0 (a path there or a Hugging Face Hub id); without it, pi_0's folder is copied into models/pi0. */
  pi0?: string;
  /** GPUs of the one machine accelerate.yaml describes (default 8). */
  gpus?: number;
}

const PI0_COPY = 'models/pi0';
const template = (name: string): Promise<string> => readFile(new URL(`./project/${name}.in`, import.meta.url), 'utf8');
const jsonl = (rows: readonly JsonObject[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** Where a stage's output lies in the project, as the next stage's script reads it. */
function outputPath(spec: StageSpec): string {
  const kind = STAGES[spec.kind].produces;
  return kind === 'model' || kind === 'reward' ? `outputs/${spec.id}/model` : `outputs/${spec.id}`;
}

/** Why `spec` cannot be exported given the stages exported before it, or null when it can. */
function notExportable(spec: StageSpec, exported: ReadonlyMap<string, StageSpec>, demos: Demonstrations): string | null {
  if (TRL_SCRIPTS[spec.kind] === undefined) return NO_COUNTERPART[spec.kind] ?? 'no TRL counterpart';
  for (const field of Object.keys(STAGES[spec.kind].inputs)) {
    for (const r of inputRefs(spec[field])) {
      if (r !== PI0 && r !== DEMOS && !exported.has(r)) return `its ${field} '${r}' is not exported, so the studio makes it after the import`;
    }
  }
  if (spec.kind === 'rl' && spec.reference !== spec.policy) return `TRL's RLOO and GRPO take the starting policy as the KL reference, but this stage names another reference ('${String(spec.reference)}')`;
  if (spec.kind === 'dpo') {
    const missing = demos.train.filter((d) => d.rejected === undefined).length;
    if (missing > 0) return `DPO needs a rejected response for every train prompt, but ${missing} of ${demos.train.length} have none`;
  }
  if (spec.kind === 'pref-reward' && preferencePrompts(demos.train).length === 0) return 'no train demonstration has a rejected response to prefer against';
  return null;
}

/** A stage's settings file (stages/<id>.json): what its script reads. */
function stageFile(def: ExperimentDefinition, spec: StageSpec, paths: ReadonlyMap<string, string>, demos: Demonstrations): JsonObject {
  const { id, kind, ...settings } = spec;
  const inputs: JsonObject = {};
  for (const field of Object.keys(STAGES[kind].inputs)) {
    const refs = inputRefs(spec[field]).filter((r) => r !== DEMOS);
    if (refs.length > 0) inputs[field] = STAGES[kind].inputs[field].list ? refs.map((r) => paths.get(r)!) : paths.get(refs[0])!;
  }
  const out: JsonObject = { id, kind, seed: stageRunSeed(def, spec), settings: settings as JsonObject, inputs };
  // The prompts the studio keeps out of a scorer's training (a salted hash of the prompt):
  // indices into the train prompts (reward) or the preference rows (pref-reward).
  if (kind === 'reward') out.heldOut = demos.train.flatMap((d, i) => (heldOutPrompt(d.prompt, settings.heldOut as number) ? [i] : []));
  if (kind === 'pref-reward') out.heldOut = preferencePrompts(demos.train).flatMap((p, i) => (heldOutPrompt(p.prompt, settings.heldOut as number) ? [i] : []));
  if (kind === 'spin') out.stop = [...TURN_STOPS];
  if (kind === 'bon') {
    // bon scores as the reward stage's scorer does: with that stage's maxLength.
    const reward = def.stages.find((s) => s.id === settings.reward)!;
    out.rewardMaxLength = reward.maxLength as number;
  }
  return out;
}

/**
 * Writes the project for `def` into `o.out`: assembled in a temporary folder beside it and
 * renamed at the end, so a present project is complete. The demonstrations are read (and
 * pi_0 resolved) as a run of the experiment would.
 */
export async function exportTrl(db: StudioDatabase, files: StudioFiles, def: ExperimentDefinition, o: TrlExportOptions): Promise<TrlManifest> {
  const out = resolve(o.out);
  if (existsSync(out)) throw new Error(`${out} already exists; choose a new folder for the exported project.`);
  const gpus = o.gpus ?? 8;
  if (!Number.isInteger(gpus) || gpus < 1) throw new Error(`gpus must be a whole number from 1 up, not ${gpus}.`);
  const pi0 = await initialModelArtifact(db, files, def.model);
  const data = await resolveDataSpec(db, files, def.data, 'trl-export');
  const demos = await loadDemonstrations({ ...data, chatTemplateModel: pi0.dir });

  const exported = new Map<string, StageSpec>();
  const paths = new Map<string, string>([[PI0, o.pi0 ?? PI0_COPY]]);
  const stages: ExportedStage[] = def.stages.map((spec) => {
    const why = notExportable(spec, exported, demos);
    if (why !== null) return { id: spec.id, kind: spec.kind, exported: false, why };
    exported.set(spec.id, spec);
    paths.set(spec.id, outputPath(spec));
    return { id: spec.id, kind: spec.kind, exported: true, script: TRL_SCRIPTS[spec.kind], output: outputPath(spec) };
  });
  const preferences = demos.train.filter((d) => d.rejected !== undefined);
  const manifest: TrlManifest = {
    format: MANIFEST_FORMAT, exportedAt: new Date().toISOString(), experiment: { id: o.experimentId ?? null, name: def.name },
    definition: def, pi0: paths.get(PI0)!, gpus, data: { train: demos.train.length, eval: demos.eval.length, preferences: preferences.length }, stages,
  };

  await mkdir(dirname(out), { recursive: true });
  const temp = join(dirname(out), `.${basename(out)}.${process.pid}.partial`);
  await rm(temp, { recursive: true, force: true });
  try {
    const write = async (rel: string, content: string): Promise<void> => {
      await mkdir(dirname(join(temp, rel)), { recursive: true });
      await writeFile(join(temp, rel), content);
    };
    // The data in TRL's formats: prompt/completion (SFT), prompts, and chosen/rejected pairs.
    await write('data/train.jsonl', jsonl(demos.train.map((d) => ({ prompt: d.prompt, completion: d.response }))));
    await write('data/eval.jsonl', jsonl(demos.eval.map((d) => ({ prompt: d.prompt }))));
    if (preferences.length > 0) await write('data/preferences.jsonl', jsonl(preferences.map((d) => ({ prompt: d.prompt, chosen: d.response, rejected: d.rejected! }))));
    for (const spec of exported.values()) await write(`stages/${spec.id}.json`, `${JSON.stringify(stageFile(def, spec, paths, demos), null, 1)}\n`);
    for (const f of SCRIPT_FILES) await write(`scripts/${f}`, await template(f));
    await write('run.sh', runScript(def, stages));
    await write('requirements.txt', requirements());
    await write('accelerate.yaml', accelerateConfig(gpus, false));
    await write('accelerate-fsdp.yaml', accelerateConfig(gpus, true));
    await write('README.md', readme(manifest, exported));
    await write(MANIFEST, `${JSON.stringify(manifest, null, 1)}\n`);
    if (o.pi0 === undefined) await cp(pi0.dir, join(temp, PI0_COPY), { recursive: true, filter: (src) => !basename(src).startsWith('.') });
    await rename(temp, out);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  return manifest;
}

/** run.sh: the exported stages in the experiment's order; consecutive sample stages share one process. */
function runScript(def: ExperimentDefinition, stages: readonly ExportedStage[]): string {
  const steps: { script: string; ids: string[] }[] = [];
  for (const s of stages) {
    if (!s.exported) continue;
    const last = steps.at(-1);
    if (s.script === 'sample.py' && last?.script === 'sample.py') last.ids.push(s.id);
    else steps.push({ script: s.script!, ids: [s.id] });
  }
  return `#!/usr/bin/env bash
# Runs the exported stages of the experiment '${def.name}' in the studio's order.
# Training scripts start with LAUNCH: accelerate launch with accelerate.yaml (one machine,
# its GPUs) where a GPU is visible, one plain python3 process otherwise. Sampling and
# Best-of-N scoring run as one process (vLLM, when installed, spreads over the GPUs).
# A stage that finished (outputs/<id>/stage.json) is kept: delete outputs/<id> to run it again.
#   AFD_MAX_STEPS=N   caps every training stage at N optimizer steps (a smoke test)
#   LAUNCH="accelerate launch --config_file accelerate-fsdp.yaml"   shards a model that does not fit one GPU
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=\${PYTHON:-python3}
if [ -z "\${LAUNCH:-}" ]; then
  if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    LAUNCH="accelerate launch --config_file accelerate.yaml"
  else
    LAUNCH="$PYTHON"
  fi
fi

# step LAUNCHER SCRIPT ID...: runs the script on the stages among ID... that have not finished.
step() {
  local launcher=$1 script=$2 id pending=()
  shift 2
  for id in "$@"; do [ -f "outputs/$id/stage.json" ] || pending+=("$id"); done
  if [ \${#pending[@]} -eq 0 ]; then echo "== $*: finished earlier, kept"; return; fi
  echo "== \${pending[*]} (scripts/$script)"
  $launcher "scripts/$script" "\${pending[@]}"
}

${steps.map((s) => `step "${SINGLE_PROCESS.has(s.script) ? '$PYTHON' : '$LAUNCH'}" ${s.script} ${s.ids.join(' ')}`).join('\n')}
echo "Done. Bring the outputs back into the studio: afd import results \\"$(pwd)\\""
`;
}

function requirements(): string {
  return `# What AfD Studio tests this project with (its CI runs it on a CPU with these).
# Install PyTorch for your GPUs first (https://pytorch.org), then: pip install -r requirements.txt
transformers==${PINNED.transformers}
trl==${PINNED.trl}
accelerate==${PINNED.accelerate}
datasets==${PINNED.datasets}
# LoRA stages (adaptation: lora) and merging their adapters.
peft==${PINNED.peft}
# Optional: pip install vllm, and the sample stages sample with vLLM.
`;
}

/** One machine with `gpus` GPUs: data parallel, or FSDP2 (full shards) for a model that does not fit one GPU. */
function accelerateConfig(gpus: number, fsdp: boolean): string {
  const lines = [
    fsdp ? '# One machine, its GPUs sharding the model, gradients and optimizer state (FSDP2): for a policy that does not fit one GPU.' : '# One machine, one process per GPU, each with a whole copy of the model (data parallel).',
    '# Several machines: set num_machines, machine_rank (0 on the first, 1, 2... on the others), main_process_ip and',
    '# main_process_port, with num_processes the GPUs of ALL machines, and start run.sh on every machine (see README.md).',
    'compute_environment: LOCAL_MACHINE',
    `distributed_type: ${fsdp ? 'FSDP' : gpus > 1 ? 'MULTI_GPU' : 'NO'}`,
    'downcast_bf16: \'no\'',
    ...(fsdp ? ['fsdp_config:', '  fsdp_version: 2', '  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP', '  fsdp_cpu_ram_efficient_loading: true', '  fsdp_offload_params: false', '  fsdp_reshard_after_forward: true', '  fsdp_state_dict_type: FULL_STATE_DICT', '  fsdp_activation_checkpointing: false'] : []),
    'gpu_ids: all',
    'machine_rank: 0',
    'main_training_function: main',
    'mixed_precision: bf16',
    'num_machines: 1',
    `num_processes: ${gpus}`,
    'rdzv_backend: static',
    'same_network: true',
    'use_cpu: false',
  ];
  return `${lines.join('\n')}\n`;
}

const settingText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function readme(m: TrlManifest, exported: ReadonlyMap<string, StageSpec>): string {
  const def = m.definition;
  const rows = m.stages.filter((s) => s.exported).map((s) => {
    const spec = exported.get(s.id)!;
    const { id: _id, kind: _kind, ...settings } = spec;
    const shown = Object.entries(settings).filter(([k]) => !['checkpointEvery', 'promptsPerChunk', 'stop'].includes(k)).map(([k, v]) => `${k} ${settingText(v)}`).join(', ');
    return `| ${s.id} | ${s.kind} | scripts/${s.script} | ${s.output} | ${shown} |`;
  });
  const skipped = m.stages.filter((s) => !s.exported).map((s) => `- **${s.id}** (${s.kind}): ${s.why}.`);
  return `# ${def.name}: the AfD Studio experiment for TRL and accelerate

Exported by AfD Studio (\`afd export trl\`) on ${m.exportedAt.slice(0, 10)}, for machines with GPUs: the
experiment's stages as Hugging Face TRL scripts on accelerate (DeepSpeed or FSDP underneath), with the
studio's settings. The studio itself keeps running on one machine; bring the outputs back with
\`afd import results\` and they sit beside the studio's own runs in Compare and Results.

## Run it

    pip install -r requirements.txt          # after PyTorch for your GPUs
    bash run.sh

\`run.sh\` runs the stages below in order. Training scripts start with \`accelerate launch --config_file
accelerate.yaml\` (one machine, ${m.gpus} GPU${m.gpus === 1 ? '' : 's'}, one process each; change \`num_processes\` for
another count) when a GPU is visible, and as one plain process on a machine without one. A stage
that finished (\`outputs/<id>/stage.json\`) is kept when run.sh runs again; delete \`outputs/<id>\`
to run it again (and the stages after it that read it). One stage by hand:

    accelerate launch --config_file accelerate.yaml scripts/sft.py sft
    python scripts/sample.py init-train

\`AFD_MAX_STEPS=3 bash run.sh\` caps every training stage at 3 optimizer steps: a quick check of the
whole chain before the real run.

## What runs where

- The studio (one machine, CPU or GPU) ran or defines the experiment, and runs the stages listed as
  not exported below after the import: the gold judge, the evaluation, and whatever TRL has no
  counterpart for.
- This project (a GPU machine or a cluster) runs the exported stages.

A model that does not fit one GPU (a 7B policy trained in full): \`LAUNCH="accelerate launch
--config_file accelerate-fsdp.yaml" bash run.sh\` shards parameters, gradients and optimizer state
over the GPUs (FSDP2). DeepSpeed ZeRO works the same way with an accelerate config of your own
(\`accelerate config\`).

Several machines: in the accelerate config set \`num_machines\`, \`num_processes\` (the GPUs of all
machines), \`main_process_ip\` and \`main_process_port\` (the first machine's), and on each machine its
\`machine_rank\` (0, 1, ...); put this folder on a shared file system, or copy it to every machine, and
start \`run.sh\` on all of them. On Slurm, one \`srun\` task per machine running run.sh with
\`machine_rank=$SLURM_NODEID\` is the usual pattern (see accelerate's documentation).
Sampling (\`scripts/sample.py\`) and Best-of-N scoring run as one process on the first machine.

## Stages

Each stage's settings are in \`stages/<id>.json\`, exactly as the studio parsed them (every default
filled in), with its seed; the scripts pass them to TRL: seed, learning rate, epochs, batch (a whole
optimizer step's, split across the processes), maximum length, weight decay, gradient clipping, LoRA
rank and alpha, a linear warm-up over \`warmup\` of the steps then cosine decay to lr / 10.

| stage | kind | script | output | settings |
| --- | --- | --- | --- | --- |
${rows.join('\n')}

### Not exported

${skipped.length === 0 ? 'Every stage is exported.' : skipped.join('\n')}

## Data

- \`data/train.jsonl\`: the ${m.data.train} train demonstrations, \`{prompt, completion}\` (TRL's prompt-completion format);
- \`data/eval.jsonl\`: the ${m.data.eval} evaluation prompts, \`{prompt}\`, never trained on;
${m.data.preferences > 0 ? `- \`data/preferences.jsonl\`: the ${m.data.preferences} train prompts with a chosen and a rejected response, \`{prompt, chosen, rejected}\` (baselines only);\n` : ''}- \`data/<stage>-pairs.jsonl\`, written by the reward, DPO and SPIN stages before they train: their pairs
  in TRL's preference format (for an AfD reward, SFT sample as chosen against pi_0 sample as rejected).

Prompts were split into train and evaluation by the studio (a stable hash of the prompt), and rows
are tokenized as the studio does: a prompt too long for \`maxLength\` loses its oldest tokens, not the
response.

## Outputs

\`outputs/<id>/model\` (Hugging Face folders; LoRA adapters merged; reward models as
\`AutoModelForSequenceClassification\` with one label), \`outputs/<id>/samples.jsonl\`
(\`{i, k, prompt, text, tokens, finish}\`), \`outputs/<id>/selection.json\` (Best-of-N picks) and
\`outputs/<id>/stage.json\` (finished; seconds, versions, final metrics).

Back in the studio:

    afd import results <this folder>

makes a new experiment, "${def.name} (trl)", linked to this one: the outputs become its models (with
their lineage) and generations, and the studio then runs the stages that were not exported (with
\`--no-run\`, it only imports). Compare and Results show them beside the studio's own runs.

## How it differs from the studio's own run

The settings are the same; the training code is TRL's, so the numbers are close, not equal:

- Random draws differ (batch order, LoRA initialization, samples): the seeds are the same numbers,
  fed to other generators.
- TRL's warm-up starts at a learning rate of 0; the studio's first step uses lr / warm-up steps.
- Llama-family tokenizers add a BOS token in TRL's own tokenization (DPO, RL); the studio never adds one.
- DPO: the prompt is shortened once for the longer of its two responses; the studio shortens each row.
- RL: TRL does not stop a response at the next turn ("\\n\\nHuman:"); the studio's rl stage does. With
  GRPO, TRL puts the KL term in the loss (per token); the studio subtracts it from the reward as RLOO does.
- Sampling with vLLM or transformers draws other responses than the studio's sampler for the same seed.
`;
}
