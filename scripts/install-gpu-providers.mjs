// Postinstall and `npm run install:cuda`: ONNX Runtime's CUDA provider on Linux x64 machines
// with an NVIDIA GPU.
//
// onnxruntime-node bundles the CPU and WebGPU providers; its CUDA provider
// (libonnxruntime_providers_cuda.so, about 300 MB, and libonnxruntime_providers_shared.so) is
// too large for the npm registry. It comes from one of two sources, the same files either way,
// copied next to the binding's libonnxruntime.so.1:
//
//   1. nuget: onnxruntime-node's own install script (Microsoft.ML.OnnxRuntime.Gpu.Linux of its
//      version, from api.nuget.org);
//   2. pypi: where that host is unreachable, the onnxruntime-gpu wheel of exactly
//      onnxruntime-node's version, through `python3 -m pip download` (PyPI or the mirror pip is
//      configured for); only the two provider libraries are taken from it. Their interface to
//      libonnxruntime is internal, so the versions must match exactly: any other is refused.
//
// We do not let onnxruntime-node's script run as part of `npm ci` (package.json
// `allowScripts`), because a failed download there fails the whole install. Instead we run it
// here, only where it is useful, and turn any failure into a warning that says how to retry.
//
//   ONNXRUNTIME_NODE_INSTALL=skip   never download (CI, offline machines) unless --force
//   --force                         download even without a detected NVIDIA GPU
//   --from nuget|pypi               one source only (default: nuget, then pypi)
//   --wheel FILE                    the libraries from this onnxruntime-gpu wheel (offline machines)
//   --target DIR                    where the libraries go (default: beside libonnxruntime.so.1)
//
// Exit status: 0 when the provider is installed or there was nothing to do; 1 when it could
// not be installed under --force or --wheel (the postinstall only warns).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const PROVIDER_LIBRARIES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];
const say = (msg) => console.log(`[afd-studio] ${msg}`);

function hasNvidiaGpu() {
  if (existsSync('/proc/driver/nvidia/version')) return true;
  try { return readdirSync('/dev').some((n) => /^nvidia\d+$/.test(n)); } catch { return false; }
}

/** onnxruntime-node's folder, version and the folder of its Linux x64 binding. */
function onnxruntimeNode() {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('onnxruntime-node/package.json'));
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return { dir, version, binDir: join(dir, 'bin', 'napi-v6', 'linux', 'x64'), require: createRequire(join(dir, 'package.json')) };
}

/** Source 1: onnxruntime-node's install script (NuGet). Throws why it failed. */
function fromNuget(ort, target) {
  say(`downloading the CUDA provider of onnxruntime-node ${ort.version} from NuGet (several hundred MB)...`);
  const r = spawnSync(process.execPath, [join(ort.dir, 'script', 'install.js'), '--onnxruntime-node-install=cuda12'], {
    stdio: ['ignore', 'inherit', 'pipe'], cwd: ort.dir, timeout: 15 * 60 * 1000, encoding: 'utf8',
  });
  const missing = PROVIDER_LIBRARIES.filter((f) => !existsSync(join(ort.binDir, f)));
  if (r.status !== 0 || missing.length > 0) {
    // Its failures end in a stack trace: the Error line says what happened (getaddrinfo ENOTFOUND api.nuget.org).
    const lines = (r.stderr ?? '').split('\n').map((l) => l.trim());
    const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? r.error?.message ?? `exit status ${r.status}`;
    throw new Error(`NuGet: ${why}`);
  }
  if (target !== ort.binDir) for (const f of PROVIDER_LIBRARIES) copyFileSync(join(ort.binDir, f), join(target, f));
}

/** Source 2: the onnxruntime-gpu wheel of exactly `ort.version`, downloaded by pip. Throws why it failed. */
function fromPypi(ort, target) {
  const python = process.env.PYTHON ?? 'python3';
  const dir = mkdtempSync(join(tmpdir(), 'afd-onnxruntime-gpu-'));
  try {
    say(`downloading onnxruntime-gpu==${ort.version} with pip (about 300 MB)...`);
    // The provider libraries do not depend on the Python version: name one that has wheels, so
    // that this Python's own version does not matter.
    const r = spawnSync(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--quiet',
      '--python-version', '3.12', '--implementation', 'cp', '--platform', 'manylinux_2_28_x86_64', '--platform', 'manylinux_2_27_x86_64', '--platform', 'manylinux_2_17_x86_64',
      '--dest', dir, `onnxruntime-gpu==${ort.version}`], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', timeout: 30 * 60 * 1000 });
    if (r.error) throw new Error(`pip: could not run ${python} (${r.error.message}); the PyPI source needs Python 3 with pip`);
    if (r.status !== 0) throw new Error(`pip: ${(r.stderr ?? '').trim().split('\n').filter(Boolean).pop() ?? `exit status ${r.status}`}`);
    const wheel = readdirSync(dir).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip downloaded no wheel of onnxruntime-gpu==${ort.version}`);
    fromWheel(ort, join(dir, wheel), target);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The provider libraries from an onnxruntime-gpu wheel (a zip), refused unless its version
 * is onnxruntime-node's. Read with adm-zip, the library onnxruntime-node's own install script
 * extracts its NuGet package with. Each file is written under a temporary name and renamed.
 */
function fromWheel(ort, wheel, target) {
  const AdmZip = ort.require('adm-zip');
  let zip;
  try {
    zip = new AdmZip(wheel);
  } catch (e) {
    throw new Error(`${wheel} is not a wheel (a zip file): ${e.message}`);
  }
  const entries = zip.getEntries();
  const metadata = entries.find((e) => /^[^/]+\.dist-info\/METADATA$/.test(e.entryName));
  const field = (name) => metadata && new RegExp(`^${name}: *(.+)$`, 'm').exec(metadata.getData().toString('utf8'))?.[1].trim();
  const name = field('Name'), version = field('Version');
  if (!name || !/^onnxruntime[-_]gpu$/i.test(name)) throw new Error(`${wheel} is not an onnxruntime-gpu wheel (its METADATA names ${name ?? 'no package'})`);
  if (version !== ort.version) {
    throw new Error(`${wheel} is onnxruntime-gpu ${version}, but onnxruntime-node is ${ort.version}: the provider libraries work only with the libonnxruntime of their own version, so the versions must match exactly (take onnxruntime-gpu==${ort.version})`);
  }
  const found = PROVIDER_LIBRARIES.map((f) => [f, entries.find((e) => e.entryName === `onnxruntime/capi/${f}`)]);
  const absent = found.filter(([, e]) => !e).map(([f]) => f);
  if (absent.length > 0) throw new Error(`${wheel} has no onnxruntime/capi/${absent.join(' or ')}`);
  mkdirSync(target, { recursive: true });
  for (const [f, entry] of found) {
    const temp = join(target, `.${f}.${process.pid}.tmp`);
    writeFileSync(temp, entry.getData());
    renameSync(temp, join(target, f));
  }
  say(`took ${PROVIDER_LIBRARIES.join(' and ')} from onnxruntime-gpu ${version} into ${target}`);
}

function main() {
  const { values } = parseArgs({
    options: { force: { type: 'boolean', default: false }, from: { type: 'string' }, wheel: { type: 'string' }, target: { type: 'string' } },
  });
  const explicit = values.force || values.wheel !== undefined;
  if (process.env.ONNXRUNTIME_NODE_INSTALL === 'skip' && !explicit) return 0;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    if (explicit) say(`the CUDA provider is only distributed for linux/x64, not ${process.platform}/${process.arch}.`);
    return explicit ? 1 : 0;
  }
  if (!explicit && !hasNvidiaGpu()) return 0; // the CPU and WebGPU providers are bundled; nothing to fetch
  if (values.from !== undefined && !['nuget', 'pypi'].includes(values.from)) throw new Error(`--from must be nuget or pypi, not '${values.from}'`);
  let ort;
  try {
    ort = onnxruntimeNode();
  } catch {
    say('onnxruntime-node is not installed yet; skipping the CUDA provider.');
    return explicit ? 1 : 0;
  }
  const target = values.target ?? ort.binDir;
  if (values.wheel !== undefined) {
    fromWheel(ort, values.wheel, target);
    return 0;
  }
  if (!values.force && PROVIDER_LIBRARIES.every((f) => existsSync(join(target, f)))) return 0;
  const sources = { nuget: fromNuget, pypi: fromPypi };
  const failures = [];
  for (const name of values.from ? [values.from] : ['nuget', 'pypi']) {
    try {
      sources[name](ort, target);
      say(`CUDA provider installed (from ${name === 'nuget' ? 'NuGet' : 'PyPI'}). \`afd doctor\` says whether it runs here.`);
      return 0;
    } catch (e) {
      failures.push(e.message);
      say(`${e.message}`);
    }
  }
  say('WARNING: the CUDA provider could not be installed; AfD Studio will use WebGPU or the CPU instead.');
  say(`Retry when NuGet or PyPI is reachable with:  npm run install:cuda   (or download onnxruntime-gpu==${ort.version} elsewhere and run: npm run install:cuda -- --wheel FILE)`);
  return values.force ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  const asked = process.argv.some((a) => /^--(force|wheel|from|target)\b/.test(a));
  say(`${asked ? 'ERROR' : 'WARNING'}: the CUDA provider was not installed: ${e instanceof Error ? e.message : String(e)}`);
  if (!asked) say('AfD Studio will use WebGPU or the CPU instead. Retry with:  npm run install:cuda');
  process.exitCode = asked ? 1 : 0;
}
