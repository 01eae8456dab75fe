// Whether a stage fits before it starts: its estimate (memory-estimate.ts) from the shapes
// of the models it reads, against the memory available now, refused with one sentence
// that names what to lower. Each stage's estimate for an experiment's view, from its
// definition alone, is the experiments layer's (main/experiments/memory.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '../../db/json.ts';
import { familyOf, type ModelSpec } from '../../native-models/models/index.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import type { Demonstrations } from './data.ts';
import { CALIBRATION, describeEstimate, formatBytes, stageEstimate, type MemoryPart, type PromptFacts, type StageMemoryEstimate } from './memory-estimate.ts';
import { SCORER_DIR } from './scorer.ts';
import { modelDir, type Artifact, type StageInputs } from './stage.ts';

/** The shape of a Hugging Face model folder, from its config.json. */
export function folderShape(dir: string): ModelSpec {
  return familyOf(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>);
}

// ------------------------------------------------------------------- memory now

/** Bytes of memory available now: MemAvailable (free plus what the kernel can reclaim at once), else free memory. */
export function availableMemory(meminfo: () => string = () => readFileSync('/proc/meminfo', 'utf8')): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo());
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: free memory, which leaves out the reclaimable page cache and so errs on the cautious side.
  }
  return freemem();
}

/** Free memory of the CUDA device ONNX Runtime uses (the first visible one), from nvidia-smi; null when it cannot be read. */
export function cudaFreeMemory(): number | null {
  const device = (process.env.CUDA_VISIBLE_DEVICES ?? '0').split(',')[0].trim() || '0';
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.free', '--format=csv,noheader,nounits', '-i', device], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    const mib = Number(out.trim().split('\n')[0]);
    return Number.isFinite(mib) ? mib * 2 ** 20 : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------- the refusal

/** Where the stage runs and what is free there. `alreadyResident`: what its process holds already (a stage in the app's worker shares the app's process). */
export interface MemorySituation {
  provider: ProviderName;
  hostAvailable: number;
  /** Free device memory on a GPU provider; null where it cannot be read (then only host memory is checked). */
  deviceAvailable: number | null;
  alreadyResident: number;
}

const sum = (parts: readonly MemoryPart[]): number => parts.reduce((n, p) => n + p.bytes, 0);
const listed = (xs: readonly string[]): string => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} or ${xs.at(-1)}` : xs[0]);

/**
 * Null when the stage fits, else the one sentence that refuses it: how much it needs,
 * how much is free, and the settings that lower it, with their values now. On a GPU
 * provider the sessions' parts are checked against the device's free memory and the rest
 * against host memory.
 */
export function memoryRefusal(stageId: string, e: StageMemoryEstimate, settings: JsonObject, where: MemorySituation): string | null {
  const onDevice = where.provider !== 'cpu';
  const device = onDevice ? sum(e.parts.filter((p) => p.device === true)) : 0;
  const host = e.bytes - device - where.alreadyResident;
  const knobs = listed(e.lower.map((k) => (settings[k] === undefined ? k : `${k} (now ${JSON.stringify(settings[k])})`)));
  if (host > where.hostAvailable) {
    const need = onDevice ? `about ${formatBytes(host)} of host memory` : `about ${describeEstimate({ ...e, bytes: host })}`;
    return `Stage '${stageId}' would need ${need} at its peak, but ${formatBytes(where.hostAvailable)} is available; lower ${knobs}, or free memory, and run it again.`;
  }
  if (onDevice && where.deviceAvailable !== null && device > where.deviceAvailable) {
    return `Stage '${stageId}' would need about ${formatBytes(device)} of GPU memory at its peak (${e.phase}), but ${formatBytes(where.deviceAvailable)} is free on the GPU; lower ${knobs}, or run it on the CPU, and run it again.`;
  }
  return null;
}

// ------------------------------------------------------------------- a stage about to run

/** The model shape an input artifact holds: a model folder, or a trained scorer's backbone. */
function artifactShape(a: Artifact): ModelSpec | undefined {
  if (a.type === 'model') return folderShape(modelDir(a));
  const scorer = join(a.dir, SCORER_DIR);
  return a.type === 'reward' && existsSync(join(scorer, 'config.json')) ? folderShape(scorer) : undefined;
}

/** For stages that sample from the train prompts (rl, airl, ditto, spin without a samples stage): how many there are and the longest, in the policy's tokens. */
async function promptFacts(kind: string, settings: JsonObject, inputs: StageInputs, data: () => Promise<Demonstrations>): Promise<PromptFacts | undefined> {
  const samples = kind === 'rl' || kind === 'airl' || kind === 'ditto' || (kind === 'spin' && typeof settings.samples !== 'string');
  if (!samples) return undefined;
  const policy = inputs.policy;
  if (policy === undefined || Array.isArray(policy)) return undefined;
  const tokenizer = await Tokenizer.fromFolder(modelDir(policy));
  const prompts = (await data()).train.map((d) => d.prompt);
  return { count: prompts.length, longest: Math.max(0, ...prompts.map((p) => tokenizer.encode(p, { addSpecialTokens: false }).length)) };
}

/** The estimate of a stage about to run on these input artifacts and data (null for a stage that is not sized). */
export async function estimateStageRun(kind: string, settings: JsonObject, inputs: StageInputs, data: () => Promise<Demonstrations>): Promise<StageMemoryEstimate | null> {
  const shapes = (field: string): ModelSpec | undefined => {
    const a = inputs[field];
    return a === undefined || Array.isArray(a) ? undefined : artifactShape(a);
  };
  return stageEstimate(kind, settings, shapes, await promptFacts(kind, settings, inputs, data));
}

/**
 * Before a stage starts: its estimate, logged, and the refusal when it does not fit
 * (thrown). AFD_MEMORY_CHECK=off logs the estimate and the refusal but runs the stage.
 * An estimate that cannot be made is logged and never stops the stage.
 */
export async function checkStageMemory(o: {
  id: string;
  kind: string;
  settings: JsonObject;
  inputs: StageInputs;
  provider: ProviderName;
  data: () => Promise<Demonstrations>;
  log: (text: string) => void;
  situation?: MemorySituation;
}): Promise<void> {
  let e: StageMemoryEstimate | null;
  try {
    e = await estimateStageRun(o.kind, o.settings, o.inputs, o.data);
  } catch (err) {
    o.log(`memory estimate: not made (${(err as Error).message})`);
    return;
  }
  if (e === null) return;
  o.log(`memory estimate: ${describeEstimate(e)}`);
  const where = o.situation ?? {
    provider: o.provider, hostAvailable: availableMemory(), deviceAvailable: o.provider === 'cuda' ? cudaFreeMemory() : null,
    // The stage runs in a worker of a process that has paid its fixed cost already.
    alreadyResident: CALIBRATION.processBytes,
  };
  if (o.provider !== 'cpu' && where.deviceAvailable === null) o.log(`memory estimate: the ${o.provider} device's free memory cannot be read here, so only host memory is checked`);
  const refusal = memoryRefusal(o.id, e, o.settings, where);
  if (refusal === null) return;
  if (process.env.AFD_MEMORY_CHECK === 'off') {
    o.log(`${refusal} (AFD_MEMORY_CHECK=off: running it anyway)`);
    return;
  }
  throw new Error(refusal);
}
