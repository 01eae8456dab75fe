// Packs what the prepared GPU check (`afd bench gpu`, bench/gpu-check.ts) needs on a machine
// that has a GPU, Python with PyTorch, and no Node.js or network, into .gpu-check/bundle.tar.xz:
//
//   .gpu-check/bin/node                 this Node binary (process.execPath)
//   node_modules/...                    the packages the check loads, onnxruntime-node with
//                                       its Linux x64 libraries only
//   .gpu-check/smollm2-135m-shape/      SmolLM2-135M's config.json and tokenizer files, no weights
//   .gpu-check/debs/libvulkan1_*.deb    the Vulkan loader (WebGPU runs on Vulkan on Linux)
//
// The repository's working tree travels beside it (the sources, bench/*.py, the HH data);
// scripts/gpu-check.sh unpacks the bundle over it there and runs the check.
//
//   node --import tsx scripts/pack-gpu-check.ts
//
// The device tool carries at most 64 MiB per call, the working tree included, so the
// bundle must stay under 60 MiB (and under 64 MiB less the working tree): it fails over.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TOKENIZER_FILES } from '../native-models/checkpoint/hf-export.ts';
import { modelFolder } from '../native-models/checkpoint/gguf/to-hf.ts';
import { resolveModelArg } from '../main/models/known.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(ROOT, '.gpu-check');
const BUNDLE = join(OUT_DIR, 'bundle.tar.xz');
const LIMIT_MIB = 60;
const CALL_LIMIT_MIB = 64;

/**
 * The packages `afd bench gpu` imports: tsx (bin/afd.js compiles the sources with it there
 * as here) and every package its modules import, read from the import graph by esbuild
 * (the one tsx itself uses), so a package another module starts to import comes along.
 */
export async function rootPackages(): Promise<string[]> {
  const r = await build({
    entryPoints: [join(ROOT, 'main/cli/bench-gpu.ts')], bundle: true, write: false, metafile: true, outdir: 'unused',
    platform: 'node', format: 'esm', packages: 'external', logLevel: 'silent',
  });
  const names = new Set(['tsx']);
  for (const input of Object.values(r.metafile.inputs)) {
    for (const i of input.imports) {
      if (!i.external || i.path.startsWith('node:') || isBuiltin(i.path)) continue;
      names.add(i.path.split('/').slice(0, i.path.startsWith('@') ? 2 : 1).join('/'));
    }
  }
  return [...names].sort();
}

/** Paths inside packages that the check never loads: other platforms' binaries and command-line tools. */
export function skipped(pkg: string, rel: string): boolean {
  if (pkg === 'onnxruntime-node') return /^bin\/napi-v6\//.test(rel) && !/^bin\/napi-v6\/linux(\/x64(\/|$)|$)/.test(rel);
  if (pkg === 'protobufjs') return /^cli(\/|$)/.test(rel); // pbjs and pbts, with their own node_modules
  return false;
}

/** Where Node finds package `name` from folder `from`: the nearest node_modules above it. */
function findPackage(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === ROOT || dirname(dir) === dir) return undefined;
  }
}

/** Every package folder that `roots` need, each once (Node's resolution, so nested copies too). */
export function packageClosure(roots: readonly string[]): Map<string, string> {
  const found = new Map<string, string>(); // folder -> package name
  const visit = (name: string, from: string, optional: boolean): void => {
    const dir = findPackage(name, from);
    if (!dir) {
      if (optional) return; // another platform's optional package (fsevents)
      throw new Error(`${name} is not installed (needed from ${relative(ROOT, from) || '.'}): run npm ci`);
    }
    if (found.has(dir)) return;
    found.set(dir, name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true);
  };
  for (const name of roots) visit(name, ROOT, false);
  return found;
}

function copyPackage(name: string, from: string, to: string): void {
  cpSync(from, to, {
    recursive: true,
    filter: (src) => {
      const rel = relative(from, src).split('\\').join('/');
      // A nested node_modules is a package of its own, copied if the closure has it.
      return rel === '' || (!/^node_modules(\/|$)/.test(rel) && !skipped(name, rel));
    },
  });
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

/** What travels without `carry`: tracked files and untracked ones git does not ignore. */
function workingTreeBytes(): number {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 }).split('\0').filter(Boolean);
  return files.reduce((n, f) => n + (existsSync(join(ROOT, f)) ? statSync(join(ROOT, f)).size : 0), 0);
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the GPU machine is Linux x64; this Node binary is ${process.platform}/${process.arch}, so pack on a Linux x64 machine`);
  const stage = mkdtempSync(join(tmpdir(), 'afd-gpu-check-pack-'));
  try {
    const own = join(stage, '.gpu-check');
    mkdirSync(join(own, 'bin'), { recursive: true });
    copyFileSync(process.execPath, join(own, 'bin', 'node'));

    const roots = await rootPackages();
    const packages = packageClosure(roots);
    console.error(`packages the check imports: ${roots.join(', ')}; with their dependencies, ${packages.size}`);
    for (const [dir, name] of packages) copyPackage(name, dir, join(stage, relative(ROOT, dir)));
    for (const lib of ['libonnxruntime.so.1', 'onnxruntime_binding.node']) {
      const path = join(stage, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64', lib);
      if (!existsSync(path)) throw new Error(`onnxruntime-node has no ${lib} for linux/x64 (${path})`);
    }

    // SmolLM2-135M's shape: its config and tokenizer, not its weights (random ones are written there).
    const folder = await modelFolder(resolveModelArg('smollm2'));
    const shape = join(own, 'smollm2-135m-shape');
    mkdirSync(shape);
    for (const f of ['config.json', 'generation_config.json', ...TOKENIZER_FILES]) if (existsSync(join(folder, f))) copyFileSync(join(folder, f), join(shape, f));

    // The Vulkan loader, from this machine's Debian archive (the GPU machine has none).
    const debs = join(own, 'debs');
    mkdirSync(debs);
    try {
      execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: debs, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new Error(`apt-get download libvulkan1 failed (${(e as Error & { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}); run apt-get update first`);
    }

    const unpacked = treeBytes(stage);
    mkdirSync(OUT_DIR, { recursive: true });
    rmSync(BUNDLE, { force: true });
    console.error(`compressing ${mib(unpacked)} MiB (${packages.size} packages, the Node binary, the model's shape, libvulkan1) with xz -9...`);
    execFileSync('tar', ['-cJf', BUNDLE, '-C', stage, '.gpu-check', 'node_modules'], { stdio: 'inherit', env: { ...process.env, XZ_OPT: '-9 -T1' } });
    const size = statSync(BUNDLE).size;
    const tree = workingTreeBytes();
    console.log(`${relative(ROOT, BUNDLE)}: ${mib(size)} MiB (${mib(unpacked)} MiB unpacked); the working tree that travels with it: ${mib(tree)} MiB; together ${mib(size + tree)} of the ${CALL_LIMIT_MIB} MiB a call carries`);
    if (size > LIMIT_MIB * 2 ** 20) throw new Error(`the bundle is ${mib(size)} MiB, over its ${LIMIT_MIB} MiB`);
    if (size + tree > CALL_LIMIT_MIB * 2 ** 20) throw new Error(`the bundle and the working tree are ${mib(size + tree)} MiB together, over the ${CALL_LIMIT_MIB} MiB a call carries`);
  } catch (e) {
    rmSync(BUNDLE, { force: true });
    throw e;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

// Run as a script (its tests import the functions above).
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  try {
    await main();
  } catch (e) {
    console.error(`pack-gpu-check: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
