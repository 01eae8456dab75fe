// `afd doctor`: what this installation can do, and proof that training works here.

import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { chooseProvider, ortInfo, type ProviderName } from '../../native-models/runtime/providers.ts';
import { trainTinyLm } from '../../native-models/train/tiny-lm.ts';
import { studioVersion } from './version.ts';

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
  const choice = await chooseProvider({ force });
  log(`  execution provider: ${choice.provider} (${choice.reason})`);

  log(`Training a tiny GPT for ${steps} steps on ${choice.provider}...`);
  const run = await trainTinyLm({ steps, provider: choice.provider, threads, onStep: (r) => log(`  step ${String(r.step).padStart(3)}  loss ${r.loss.toFixed(4)}`) });
  const first = run.losses[0], last = run.losses[run.losses.length - 1];
  // Twenty steps on one batch halve the loss of a working engine; a short run must at least fall.
  const ok = last < first * (steps >= 20 ? 0.5 : 1);
  const verdict = ok
    ? `OK: the loss fell from ${first.toFixed(3)} to ${last.toFixed(3)} in ${(run.ms / 1000).toFixed(1)} s (${run.params.toLocaleString('en')} parameters).`
    : `PROBLEM: the loss went from ${first.toFixed(3)} to ${last.toFixed(3)}; it should have fallen. Run again with --debug and report it.`;
  if (values.json) {
    console.log(JSON.stringify({ version: studioVersion(), node: process.versions.node, onnxruntime: info.version, backends: info.backends, provider: choice.provider, reason: choice.reason, tried: choice.tried, threads, params: run.params, losses: run.losses, ok }));
  } else log(verdict);
  return ok ? 0 : 1;
}
