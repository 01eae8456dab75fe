// `afd doctor`: what this installation can do, and proof that training works here.

import { existsSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { CUDA_DLOPENED, describeMissing, missingLibraries, systemSearch, type LibrarySearch } from '../../native-models/runtime/cuda-libraries.ts';
import { chooseProvider, cudaLibraryPath, ortInfo, type ProviderAttempt, type ProviderChoice, type ProviderName } from '../../native-models/runtime/providers.ts';
import { trainTinyLm } from '../../native-models/train/tiny-lm.ts';
import { studioVersion } from '../startup/version.ts';

const PROVIDERS: readonly ProviderName[] = ['cpu', 'webgpu', 'cuda'];

export async function doctor(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { provider: { type: 'string' }, threads: { type: 'string' }, steps: { type: 'string', default: '20' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    console.log('usage: afd doctor [--provider cpu|webgpu|cuda] [--threads N] [--steps N] [--json]');
    return 0;
  }
  const force = values.provider as ProviderName | undefined;
  if (force && !PROVIDERS.includes(force)) throw new Error(`--provider must be one of ${PROVIDERS.join(', ')}, not '${force}'`);
  const threads = values.threads ? Number(values.threads) : availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive whole number, not '${values.threads}'`);
  const steps = Number(values.steps);
  const log = values.json ? () => {} : (s: string) => console.log(s);

  const info = ortInfo();
  log(`AfD Studio ${studioVersion()}`);
  log(`  node ${process.versions.node}, onnxruntime-node ${info.version}, ${process.platform} ${process.arch}`);
  log(`  CPU: ${cpus()[0]?.model ?? 'unknown'}, ${availableParallelism()} cores; ORT intra-op threads: ${threads}`);
  log(`  ORT backends: ${info.backends.map((b) => `${b.name}${b.bundled ? '' : ' (not bundled)'}`).join(', ')}`);
  let choice: ProviderChoice;
  try {
    choice = await chooseProvider({ force });
  } catch (e) {
    const why = force === 'cuda' ? cudaProblem([{ provider: 'cuda', ok: false, reason: (e as Error).message }]) : null;
    throw why ? new Error(`${(e as Error).message} ${capitalized(why.sentence)}.`) : e;
  }
  log(`  execution provider: ${choice.provider} (${choice.reason})`);
  const cuda = cudaProblem(choice.tried);
  if (cuda) log(`  CUDA: ${cuda.sentence}.`);

  log(`Training a tiny GPT for ${steps} steps on ${choice.provider}...`);
  const run = await trainTinyLm({ steps, provider: choice.provider, threads, onStep: (r) => log(`  step ${String(r.step).padStart(3)}  loss ${r.loss.toFixed(4)}`) });
  const first = run.losses[0], last = run.losses[run.losses.length - 1];
  // Twenty steps on one batch halve the loss of a working engine; a short run must at least fall.
  const ok = last < first * (steps >= 20 ? 0.5 : 1);
  const verdict = ok
    ? `OK: the loss fell from ${first.toFixed(3)} to ${last.toFixed(3)} in ${(run.ms / 1000).toFixed(1)} s (${run.params.toLocaleString('en')} parameters).`
    : `PROBLEM: the loss went from ${first.toFixed(3)} to ${last.toFixed(3)}; it should have fallen. Run again with --debug and report it.`;
  if (values.json) {
    console.log(JSON.stringify({
      version: studioVersion(), node: process.versions.node, onnxruntime: info.version, backends: info.backends, provider: choice.provider, reason: choice.reason, tried: choice.tried,
      ...(cuda ? { cuda_missing_libraries: cuda.missing, cuda_problem: cuda.sentence } : {}), threads, params: run.params, losses: run.losses, ok,
    }));
  } else log(verdict);
  return ok ? 0 : 1;
}

const capitalized = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Why the CUDA provider, installed but failing its test session, did not run: the CUDA and
 * cuDNN libraries it needs that the loader cannot find (runtime/cuda-libraries.ts). Null
 * when CUDA was not tried, ran, is not installed (its reason says so), or lacks nothing.
 */
export function cudaProblem(tried: readonly ProviderAttempt[], lib: string | null = cudaLibraryPath(), search: LibrarySearch = systemSearch): { missing: string[]; sentence: string } | null {
  if (!lib || !existsSync(lib) || !tried.some((t) => t.provider === 'cuda' && !t.ok)) return null;
  try {
    const missing = missingLibraries(lib, CUDA_DLOPENED, search);
    return missing.length > 0 ? { missing, sentence: describeMissing(missing) } : null;
  } catch (e) {
    return { missing: [], sentence: (e as Error).message };
  }
}
