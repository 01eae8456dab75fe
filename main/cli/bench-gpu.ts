// `afd bench gpu`: the prepared GPU check (bench/gpu-check.ts), one JSON line on stdout.
// scripts/gpu-check.sh packs what it needs for a machine with a GPU and runs it there.

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { runGpuCheck, type GpuCheckSize } from '../../bench/gpu-check.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';

const USAGE = 'usage: afd bench gpu --model-shape DIR [--size full|tiny] [--provider auto|webgpu|cuda|cpu] [--torch-device auto|cuda|cpu] [--no-bf16] [--layers N] [--steps N] [--warmup N] [--threads N] [--out FILE] [--json]';

export async function benchGpu(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'model-shape': { type: 'string' }, size: { type: 'string', default: 'full' }, provider: { type: 'string', default: 'auto' },
      'torch-device': { type: 'string', default: 'auto' }, 'no-bf16': { type: 'boolean', default: false },
      layers: { type: 'string' }, steps: { type: 'string' }, warmup: { type: 'string' }, threads: { type: 'string' }, seed: { type: 'string' },
      out: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const oneOf = <T extends string>(name: string, v: string, allowed: readonly T[]): T => {
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name} must be ${allowed.join(', ')}; not '${v}'`);
    return v as T;
  };
  const int = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number of at least ${min}, not '${v}'`);
    return n;
  };
  if (!values['model-shape']) throw new Error(`--model-shape is needed: a folder with SmolLM2-135M's config.json and tokenizer files (${USAGE.slice(7)})`);
  const result = await runGpuCheck({
    modelShape: values['model-shape'],
    size: oneOf<GpuCheckSize>('size', values.size, ['full', 'tiny']),
    provider: oneOf<ProviderName | 'auto'>('provider', values.provider, ['auto', 'webgpu', 'cuda', 'cpu']),
    torchDevice: oneOf('torch-device', values['torch-device'], ['auto', 'cuda', 'cpu'] as const),
    bf16: !values['no-bf16'],
    layers: int('layers', values.layers, 1), steps: int('steps', values.steps, 1), warmup: int('warmup', values.warmup, 0),
    threads: int('threads', values.threads, 1) ?? availableParallelism(), seed: int('seed', values.seed, 0),
    out: values.out,
    log: values.json ? undefined : (s: string) => console.error(s),
  });
  console.log(JSON.stringify(result));
  return Object.keys(result.errors).length === 0 ? 0 : 1;
}
