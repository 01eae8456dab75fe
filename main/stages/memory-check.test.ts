// A stage sized before it starts: the memory available and the sentence that refuses a
// stage that cannot fit. The afd-stage job failing with it is tested with the job
// (main/jobs/afd-stage.test.ts), an experiment's estimates in main/experiments/memory.test.ts.
import assert from 'node:assert/strict';
import { freemem } from 'node:os';
import { test } from 'node:test';
import type { JsonObject } from '../../db/json.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { demonstrations } from './data.ts';
import { availableMemory, checkStageMemory, estimateStageRun, folderShape, memoryRefusal, type MemorySituation } from './memory-check.ts';
import { stageEstimate, type StageMemoryEstimate } from './memory-estimate.ts';
import type { Artifact } from './stage.ts';
import { STAGES } from './kinds/index.ts';

const GiB = 2 ** 30;
const cpu = (hostAvailable: number, alreadyResident = 0): MemorySituation => ({ provider: 'cpu', hostAvailable, deviceAvailable: null, alreadyResident });
const estimate: StageMemoryEstimate = {
  bytes: 10 * GiB, phase: 'a training step', lower: ['batch', 'maxLength', 'adaptation: lora instead of full'],
  parts: [
    { name: 'weights', bytes: 2 * GiB, why: '' },
    { name: 'activations', bytes: 6 * GiB, why: '', device: true },
    { name: 'frozen weights', bytes: 2 * GiB, why: '', device: true },
  ],
};
const pi0: Artifact = { type: 'model', dir: DEFAULT_MODEL_DIR, stage: 'pi0' };

test('available memory is MemAvailable (free plus reclaimable), else free memory', () => {
  assert.equal(availableMemory(() => 'MemTotal:       24683520 kB\nMemFree:         1000000 kB\nMemAvailable:   22364160 kB\n'), 22364160 * 1024);
  assert.equal(availableMemory(() => 'MemTotal: 1 kB\n'), freemem());
  assert.ok(availableMemory(() => {
    throw new Error('no /proc here');
  }) > 0);
  assert.ok(availableMemory() > 0);
});

test('the refusal says how much, how much is available and which settings lower it, with their values', () => {
  const settings = { batch: 8, maxLength: 384, adaptation: 'full' };
  assert.equal(
    memoryRefusal('sft', estimate, settings, cpu(6 * GiB)),
    "Stage 'sft' would need about 10.0 GiB (a training step: activations 6.0 GiB, weights 2.0 GiB) at its peak, but 6.0 GiB is available; lower batch (now 8), maxLength (now 384) or adaptation: lora instead of full, or free memory, and run it again.",
  );
  assert.equal(memoryRefusal('sft', estimate, settings, cpu(10 * GiB)), null);
  // What the app's process holds already is not needed again.
  assert.equal(memoryRefusal('sft', estimate, settings, cpu(9.5 * GiB, GiB)), null);
  // On a GPU the sessions' parts are checked against the device and the rest against the host.
  const gpu = (deviceAvailable: number | null): MemorySituation => ({ provider: 'cuda', hostAvailable: 3 * GiB, deviceAvailable, alreadyResident: 0 });
  assert.equal(memoryRefusal('sft', estimate, settings, gpu(8 * GiB)), null);
  assert.equal(memoryRefusal('sft', estimate, settings, gpu(null)), null, 'unknown device memory: only the host is checked');
  assert.equal(
    memoryRefusal('sft', estimate, settings, gpu(7 * GiB)),
    "Stage 'sft' would need about 8.0 GiB of GPU memory at its peak (a training step), but 7.0 GiB is free on the GPU; lower batch (now 8), maxLength (now 384) or adaptation: lora instead of full, or run it on the CPU, and run it again.",
  );
  assert.match(memoryRefusal('sft', estimate, settings, { ...gpu(8 * GiB), hostAvailable: GiB })!, /^Stage 'sft' would need about 2\.0 GiB of host memory at its peak, but 1\.0 GiB is available/);
});

test('before a stage starts: its estimate is logged; a stage that cannot fit is refused; a failed estimate never stops it', async () => {
  const huge = STAGES.sft.parse({ batch: 4096, maxLength: 512 });
  const run = async (settings: JsonObject, situation: MemorySituation, inputs = { model: pi0 }): Promise<string[]> => {
    const logs: string[] = [];
    await checkStageMemory({ id: 'sft', kind: 'sft', settings, inputs, provider: 'cpu', data: () => Promise.reject(new Error('not read')), log: (t) => logs.push(t), situation });
    return logs;
  };
  const fits = await run(STAGES.sft.parse({ batch: 2, maxLength: 64 }), cpu(64 * GiB));
  assert.match(fits[0], /^memory estimate: \d+ MiB \(saving the model: /);
  await assert.rejects(run(huge, cpu(64 * GiB)), /^Error: Stage 'sft' would need about \d+\.\d GiB .* but 64\.0 GiB is available; lower batch \(now 4096\), maxLength \(now 512\) or adaptation: lora instead of full, or free memory, and run it again\.$/);
  process.env.AFD_MEMORY_CHECK = 'off';
  try {
    assert.match((await run(huge, cpu(64 * GiB))).at(-1)!, /^Stage 'sft' would need .* \(AFD_MEMORY_CHECK=off: running it anyway\)$/);
  } finally {
    delete process.env.AFD_MEMORY_CHECK;
  }
  const broken = await run(huge, cpu(GiB), { model: { ...pi0, dir: '/no/such/model' } });
  assert.match(broken[0], /^memory estimate: not made \(ENOENT/);
});

test('a stage that samples every train prompt is sized from the data: how many prompts, the longest in its tokens', async () => {
  const prompts = ['Human: hello\n\nAssistant:', 'Human: a much longer question about the weather and the sea\n\nAssistant:', 'Human: why?\n\nAssistant:'];
  const data = async () => demonstrations(prompts.map((prompt) => ({ prompt, response: ' ok' })), []);
  const settings = STAGES.ditto.parse({ n: 2, maxNewTokens: 8 });
  const e = await estimateStageRun('ditto', settings, { policy: pi0, reference: pi0 }, data);
  const tokenizer = await Tokenizer.fromFolder(DEFAULT_MODEL_DIR);
  const longest = Math.max(...prompts.map((p) => tokenizer.encode(p, { addSpecialTokens: false }).length));
  assert.ok(longest > 10);
  assert.deepEqual(e, stageEstimate('ditto', settings, () => folderShape(DEFAULT_MODEL_DIR), { count: 3, longest }));
  assert.equal(e?.phase, 'sampling from the policy');
});
