// `afd bench train --model M --lora R`: the SFT stage's LoRA step on a real model,
// against PyTorch + peft with --vs-torch; prints one JSON line (see bench/README.md).

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { defaultLoraBench, runLoraBench, startLoraReference } from '../../bench/train-lora.ts';
import { modelFolder } from '../../native-models/checkpoint/gguf/to-hf.ts';
import { resolveModelArg } from '../models/known.ts';
import { TORCH_OPTIONS, torchDevice } from './bench-torch.ts';

const USAGE = 'usage: afd bench train --model smollm2|DIR|FILE.gguf --lora RANK [--json] [--vs-torch [--torch-device cpu|cuda|auto] [--torch-bf16]] [--alpha 16] [--seq 256] [--batch 8] [--steps 8] [--warmup 2] [--threads N] [--lr 3e-4] [--seed 0] [--provider cpu|webgpu|cuda]';

export async function benchTrainLora(argv: string[]): Promise<number> {
  const num = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      model: num, lora: num, alpha: num, seq: num, batch: num, steps: num, warmup: num, threads: num, lr: num, seed: num,
      provider: { type: 'string' }, json: { type: 'boolean', default: false }, 'vs-torch': { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
      ...TORCH_OPTIONS,
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.model === undefined || values.lora === undefined) throw new Error(`--model and --lora go together: the benchmark trains LoRA adapters of rank --lora on the model --model (${USAGE.slice(7)})`);
  const int = (name: string, v: string | undefined, fallback: number, min = 1): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number of at least ${min}, not '${v}'`);
    return n;
  };
  const positive = (name: string, v: string | undefined, fallback: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number, not '${v}'`);
    return n;
  };
  const provider = (values.provider ?? 'cpu') as 'cpu' | 'webgpu' | 'cuda';
  if (!['cpu', 'webgpu', 'cuda'].includes(provider)) throw new Error(`--provider must be cpu, webgpu or cuda, not '${values.provider}'`);
  const log = values.json ? () => {} : (s: string) => console.error(s);
  const source = resolveModelArg(values.model);
  let told = false;
  const dir = await modelFolder(source, () => {
    if (!told) log(`converting ${source} into a model folder (once: the folder is cached)...`);
    told = true;
  });
  const d = defaultLoraBench(dir, availableParallelism());
  const c = {
    ...d, provider,
    rank: int('lora', values.lora, d.rank), alpha: positive('alpha', values.alpha, d.alpha), seq: int('seq', values.seq, d.seq, 2), batch: int('batch', values.batch, d.batch),
    steps: int('steps', values.steps, d.steps), warmup: int('warmup', values.warmup, d.warmup, 0), threads: int('threads', values.threads, d.threads),
    lr: positive('lr', values.lr, d.lr), seed: int('seed', values.seed, d.seed, 0),
  };
  const device = torchDevice(values);
  const result = await runLoraBench(c, log, values['vs-torch'] ? startLoraReference(c, undefined, { device }) : undefined,
    values['torch-bf16'] ? startLoraReference(c, undefined, { device, dtype: 'bfloat16' }) : undefined);
  console.log(JSON.stringify(result));
  return 0;
}
