// Postinstall: fetch ONNX Runtime's CUDA provider on Linux x64 machines with an NVIDIA GPU.
//
// onnxruntime-node bundles the CPU and WebGPU providers; its CUDA provider is too large
// for the npm registry and is downloaded by onnxruntime-node's own install script. We do
// not let that script run as part of `npm ci` (package.json `allowScripts`), because a
// failed download there fails the whole install. Instead we run it here, only where it is
// useful, and turn any failure into a warning that says how to retry.
//
//   ONNXRUNTIME_NODE_INSTALL=skip   never download (CI, offline machines)
//   --force                         download even without a detected NVIDIA GPU
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const force = process.argv.includes('--force');
const say = (msg) => console.log(`[afd-studio] ${msg}`);

function hasNvidiaGpu() {
  if (existsSync('/proc/driver/nvidia/version')) return true;
  try { return readdirSync('/dev').some((n) => /^nvidia\d+$/.test(n)); } catch { return false; }
}

function main() {
  if (process.env.ONNXRUNTIME_NODE_INSTALL === 'skip' && !force) return;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    if (force) say(`the CUDA provider is only distributed for linux/x64, not ${process.platform}/${process.arch}.`);
    return;
  }
  if (!force && !hasNvidiaGpu()) return; // the CPU and WebGPU providers are bundled; nothing to fetch
  let ortDir;
  try {
    ortDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  } catch {
    say('onnxruntime-node is not installed yet; skipping the CUDA provider.');
    return;
  }
  const lib = join(ortDir, 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime_providers_cuda.so');
  if (existsSync(lib) && !force) return;
  say(`${force ? 'Downloading' : 'NVIDIA GPU found: downloading'} the ONNX Runtime CUDA provider (several hundred MB)...`);
  const r = spawnSync(process.execPath, [join(ortDir, 'script', 'install.js'), '--onnxruntime-node-install=cuda12'], {
    stdio: 'inherit', cwd: ortDir, timeout: 15 * 60 * 1000,
  });
  if (r.status === 0 && existsSync(lib)) {
    say('CUDA provider installed.');
  } else {
    say('WARNING: the CUDA provider could not be downloaded; AfD Studio will use WebGPU or the CPU instead.');
    say('Retry when the network is reachable with:  npm run install:cuda');
  }
}

try { main(); } catch (e) {
  say(`WARNING: the GPU provider check failed (${e instanceof Error ? e.message : String(e)}); continuing without it.`);
  say('Retry with:  npm run install:cuda');
}
