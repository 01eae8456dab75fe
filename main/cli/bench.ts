// `afd bench train`: prints one JSON line (see bench/README.md).

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { defaultTrainBench, runTrainBench, TorchReference } from '../../bench/train.ts';
import { modelFolder } from '../../native-models/checkpoint/gguf/to-hf.ts';
import { resolveModelArg } from '../models/known.ts';
import { TORCH_OPTIONS, torchDevice } from './bench-torch.ts';

export async function benchTrain(argv: string[]): Promise<number> {
  // --model M --lora R: the SFT stage's LoRA step on a real model (main/cli/bench-lora.ts).
  if (argv.some((a) => /^--(model|lora)(=|$)/.test(a))) return (await import('./bench-lora.ts')).benchTrainLora(argv);
  const d = defaultTrainBench(availableParallelism());
  const num = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      vocab: num, 'd-model': num, layers: num, heads: num, seq: num, batch: num, steps: num, warmup: num, threads: num, lr: num, seed: num,
      provider: { type: 'string' }, json: { type: 'boolean', default: false }, 'vs-torch': { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
      ...TORCH_OPTIONS,
    },
  });
  if (values.help) {
    console.log('usage: afd bench train [--json] [--vs-torch [--torch-device cpu|cuda|auto] [--torch-bf16]] [--vocab 8192] [--d-model 512] [--layers 8] [--heads 8] [--seq 256] [--batch 8] [--steps 10] [--warmup 3] [--threads N] [--provider cpu|webgpu|cuda]\n       afd bench train --model smollm2|DIR --lora RANK [--vs-torch] ... (LoRA SFT; --model --help for its options)');
    return 0;
  }
  const int = (name: string, v: string | undefined, fallback: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, not '${v}'`);
    return n;
  };
  const provider = (values.provider ?? 'cpu') as 'cpu' | 'webgpu' | 'cuda';
  if (!['cpu', 'webgpu', 'cuda'].includes(provider)) throw new Error(`--provider must be cpu, webgpu or cuda, not '${values.provider}'`);
  const c = {
    ...d, provider,
    vocab: int('vocab', values.vocab, d.vocab), dModel: int('d-model', values['d-model'], d.dModel), layers: int('layers', values.layers, d.layers),
    heads: int('heads', values.heads, d.heads), seq: int('seq', values.seq, d.seq), batch: int('batch', values.batch, d.batch),
    steps: int('steps', values.steps, d.steps), warmup: int('warmup', values.warmup, d.warmup), threads: int('threads', values.threads, d.threads),
    seed: int('seed', values.seed, d.seed), lr: values.lr ? Number(values.lr) : d.lr,
  };
  if (c.dModel % c.heads !== 0) throw new Error(`--d-model (${c.dModel}) must be a multiple of --heads (${c.heads})`);
  if (c.steps < 1) throw new Error('--steps must be at least 1');
  const log = values.json ? () => {} : (s: string) => console.error(s);
  // The reference starts (and warms up) first, so that a missing PyTorch fails before the long run.
  const device = torchDevice(values);
  let torch: TorchReference | undefined;
  if (values['vs-torch']) {
    log('starting the PyTorch eager reference (its steps alternate with ours)...');
    torch = await TorchReference.start(c, undefined, { device });
  }
  let result;
  try {
    result = await runTrainBench(c, log, torch, torch && values['torch-bf16'] ? () => TorchReference.start(c, undefined, { device, dtype: 'bfloat16' }) : undefined);
  } catch (e) {
    torch?.kill();
    throw e;
  }
  console.log(JSON.stringify(result));
  return 0;
}

/** `afd bench generate`: prefill and decode throughput at batch 1 and 16 (see bench/README.md). */
export async function benchGenerate(argv: string[]): Promise<number> {
  const { runGenerateBench } = await import('../../bench/generate.ts');
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string' }, model: { type: 'string' }, 'cold-repeats': { type: 'string' }, 'skip-cold': { type: 'boolean', default: false }, batches: { type: 'string' }, 'prompt-length': { type: 'string' }, 'new-tokens': { type: 'string' }, repeats: { type: 'string' }, threads: { type: 'string' },
      provider: { type: 'string' }, json: { type: 'boolean', default: false }, 'vs-torch': { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
      ...TORCH_OPTIONS,
    },
  });
  if (values.help) {
    console.log('usage: afd bench generate [--json] [--vs-torch [--torch-device cpu|cuda|auto] [--torch-bf16]] [--model DIR|FILE.gguf|smollm2 | --models default,gpt2-small,small] [--cold-repeats 3] [--skip-cold] [--batches 1,16] [--prompt-length 64] [--new-tokens 32] [--repeats 3] [--threads N] [--provider cpu|webgpu|cuda]');
    return 0;
  }
  const list = (v: string | undefined) => v?.split(',').map((x) => x.trim()).filter(Boolean);
  const models = list(values.models);
  if (values.model && models) throw new Error('give --model (a model folder) or --models (built-in benchmark models), not both');
  const known = ['default', 'gpt2-small', 'small'];
  for (const m of models ?? []) if (!known.includes(m)) throw new Error(`--models takes ${known.join(', ')}; '${m}' is not one of them`);
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, not '${v}'`);
    return n;
  };
  const batches = list(values.batches)?.map((b) => int('batches', b)!);
  const log = values.json ? undefined : (s: string) => console.error(s);
  // A GGUF file (or a known name for one) is converted once into the model cache; the cold
  // processes are given the argument itself, so that they pay its cache lookup as a user does.
  const modelDir = values.model === undefined ? undefined : await modelFolder(resolveModelArg(values.model));
  const result = await runGenerateBench({
    models: models as ('default' | 'gpt2-small' | 'small')[] | undefined, batches, promptLength: int('prompt-length', values['prompt-length']), newTokens: int('new-tokens', values['new-tokens']),
    repeats: int('repeats', values.repeats), threads: int('threads', values.threads) ?? availableParallelism(), provider: values.provider as 'cpu' | 'webgpu' | 'cuda' | undefined,
    modelDir, modelArg: values.model, cold: !values['skip-cold'], coldRepeats: int('cold-repeats', values['cold-repeats']),
    vsTorch: values['vs-torch'], torchDevice: torchDevice(values), torchBf16: values['torch-bf16'], log,
  });
  console.log(JSON.stringify(result));
  return 0;
}
