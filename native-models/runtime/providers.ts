// Execution-provider choice (DESIGN.md §4): cuda when its libraries load, else webgpu on a
// hardware GPU adapter, else cpu; or what the user forces. Every choice is proven by a
// tiny test session and explained in a sentence; nothing falls back silently.
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CUDA_DLOPENED, describeMissing, missingLibraries, systemSearch, type LibrarySearch } from './cuda-libraries.ts';

export type ProviderName = 'cuda' | 'webgpu' | 'cpu';
export type ProviderAttempt = { provider: ProviderName; ok: boolean; reason: string };
export type ProviderChoice = { provider: ProviderName; reason: string; tried: ProviderAttempt[] };
export type OrtInfo = { version: string; backends: { name: string; bundled: boolean }[] };

export function ortInfo(): OrtInfo {
  return {
    version: ort.env.versions.node ?? ort.env.versions.common,
    backends: ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled })),
  };
}

const choices = new Map<string, Promise<ProviderChoice>>();

/** The provider to run on, decided once per process (per `force` value). */
export async function chooseProvider(opts: { force?: ProviderName } = {}): Promise<ProviderChoice> {
  const key = opts.force ?? 'auto';
  let choice = choices.get(key);
  if (!choice) {
    choice = opts.force ? forced(opts.force) : automatic();
    choices.set(key, choice);
    // A failure is not cached: the user may fix it (install CUDA) and retry.
    choice.catch(() => choices.delete(key));
  }
  return choice;
}

async function automatic(): Promise<ProviderChoice> {
  const tried: ProviderAttempt[] = [];
  for (const provider of ['cuda', 'webgpu', 'cpu'] as const) {
    const attempt = await attemptProvider(provider, false);
    tried.push(attempt);
    if (attempt.ok) {
      const said = tried.filter((t) => !t.ok || t.provider !== 'cpu').map((t) => t.reason);
      return { provider, reason: `${provider}: ${said.join('; ')}`, tried };
    }
  }
  throw new Error(`ONNX Runtime cannot run even on the CPU: ${tried.map((t) => t.reason).join('; ')}. Reinstall onnxruntime-node (npm ci).`);
}

async function forced(provider: ProviderName): Promise<ProviderChoice> {
  const attempt = await attemptProvider(provider, true);
  if (!attempt.ok) {
    throw new Error(`Cannot use the execution provider "${provider}" that was asked for: ${attempt.reason}. Choose another provider, or leave the choice to AfD Studio.`);
  }
  return { provider, reason: `${provider} (forced): ${attempt.reason}`, tried: [attempt] };
}

async function attemptProvider(provider: ProviderName, isForced: boolean): Promise<ProviderAttempt> {
  const fail = (reason: string): ProviderAttempt => ({ provider, ok: false, reason });
  let where = '';
  if (provider === 'cuda') {
    const lib = cudaLibraryPath();
    if (!lib) return fail(`ONNX Runtime has no CUDA provider for ${process.platform}/${process.arch}`);
    if (!existsSync(lib)) return fail('the CUDA provider is not installed (run `npm run install:cuda` on a machine with an NVIDIA GPU)');
  } else if (provider === 'webgpu') {
    const adapter = findGpuAdapter();
    if (!adapter.found && !isForced) return fail(`no hardware GPU adapter found (${adapter.detail})`);
    where = adapter.found ? ` on ${adapter.detail}` : ` (no hardware GPU adapter found: ${adapter.detail}; this is probably a slow software adapter)`;
  }
  const problem = await probe(provider);
  if (problem) {
    if (provider === 'cuda') return fail(cudaFailure(problem, cudaLibraryPath()!));
    const name = { webgpu: 'WebGPU', cpu: 'the CPU provider' }[provider];
    return fail(`${name} could not run a test session (${problem})`);
  }
  const ran = { cuda: 'the CUDA provider ran a test session', webgpu: `WebGPU ran a test session${where}`, cpu: 'the CPU provider ran a test session' }[provider];
  return { provider, ok: true, reason: ran };
}

/**
 * Why an installed CUDA provider could not run: ONNX Runtime's error names only the first
 * library it missed, so the libraries `lib` cannot load are named too (cuda-libraries.ts,
 * what `afd doctor` says), where they can be found out.
 */
export function cudaFailure(problem: string, lib: string, search: LibrarySearch = systemSearch): string {
  let missing: string[] = [];
  try {
    missing = process.platform === 'linux' ? missingLibraries(lib, CUDA_DLOPENED, search) : [];
  } catch {
    // No ldd: ONNX Runtime's own error is all there is to say.
  }
  return `the CUDA provider is installed but could not run a test session (${problem})${missing.length > 0 ? `; ${describeMissing(missing)}` : ''}`;
}

const CUDA_LIBRARY: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'libonnxruntime_providers_cuda.so',
  win32: 'onnxruntime_providers_cuda.dll',
};

/** Where onnxruntime-node keeps the CUDA provider library, or null where none exists. */
export function cudaLibraryPath(): string | null {
  const file = CUDA_LIBRARY[process.platform];
  if (!file || process.arch !== 'x64') return null;
  const ortDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  return join(ortDir, 'bin', 'napi-v6', process.platform, process.arch, file);
}

/**
 * Whether the machine has a hardware GPU for WebGPU. Linux: a DRM render node or an
 * NVIDIA device node; macOS always (Metal); Windows is assumed to (D3D12 is everywhere).
 */
export function findGpuAdapter(
  platform: NodeJS.Platform = process.platform,
  list: (dir: string) => string[] = listDir,
): { found: boolean; detail: string } {
  if (platform === 'darwin') return { found: true, detail: 'the Metal GPU' };
  if (platform === 'win32') return { found: true, detail: 'the Direct3D 12 GPU' };
  const render = list('/dev/dri').find((n) => /^renderD\d+$/.test(n));
  if (render) return { found: true, detail: `/dev/dri/${render}` };
  const nvidia = list('/dev').find((n) => /^nvidia\d+$/.test(n));
  if (nvidia) return { found: true, detail: `/dev/${nvidia}` };
  return { found: false, detail: 'no /dev/dri render node and no /dev/nvidia device' };
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- the test session

const { onnx } = onnxProto;
const A = [1, 2, 3, 4];
const B = [0.5, -1, 2, 0.25];
const EXPECTED = [5.5, 1.5, 12.5, 2]; // A @ B + A for 2x2 row-major A and B
let probeModel: Uint8Array | undefined;

function buildProbeModel(): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const io = (name: string): onnxProto.onnx.IValueInfoProto => ({
    name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: 2 }, { dimValue: 2 }] } } },
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'provider_probe',
      input: [io('A'), io('B')],
      output: [io('Y')],
      node: [
        { opType: 'MatMul', input: ['A', 'B'], output: ['AB'] },
        { opType: 'Add', input: ['AB', 'A'], output: ['Y'] },
      ],
    },
  })).finish();
}

/** Runs A @ B + A on `provider` alone; returns null when right, else what went wrong. */
async function probe(provider: ProviderName): Promise<string | null> {
  probeModel ??= buildProbeModel();
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(probeModel, {
      executionProviders: [provider],
      logSeverityLevel: 4, // the failure is reported by the thrown error
      // Without this ORT quietly runs unsupported nodes on the CPU, proving nothing.
      extra: provider === 'cpu' ? {} : { session: { disable_cpu_ep_fallback: '1' } },
    });
    const tensor = (v: number[]): ort.Tensor => new ort.Tensor('float32', Float32Array.from(v), [2, 2]);
    const { Y } = await session.run({ A: tensor(A), B: tensor(B) });
    const got = Array.from(Y.data as Float32Array);
    if (got.some((v, i) => Math.abs(v - EXPECTED[i]) > 1e-5)) return `it computed [${got.join(', ')}] instead of [${EXPECTED.join(', ')}]`;
    return null;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  } finally {
    await session?.release().catch(() => undefined);
  }
}
