// WebGPU in the tests: ONNX Runtime's WebGPU provider (Dawn) runs on Vulkan on Linux, so it
// needs the Vulkan loader (libvulkan.so.1) and a driver; without a GPU, Mesa's software
// driver (lavapipe) serves. macOS (Metal) and Windows (Direct3D 12) have theirs built in.
import { existsSync, readdirSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { join } from 'node:path';
import { skipWithout } from './components.ts';

/**
 * A skip reason for node:test where WebGPU has no Vulkan to run on, or false (see
 * test/support/components.ts); `tests` names them in the notice. On CI, missing means failing.
 * Only a missing loader or driver skips: where both are, a WebGPU failure fails the test.
 */
export function webgpuSkip(tests: string): string | false {
  return skipWithout({
    key: 'vulkan',
    name: 'a Vulkan driver',
    absence: () => (process.platform === 'linux' ? vulkanAbsence() : false),
    howToGet: 'install Mesa\'s Vulkan driver, 25 or newer (Debian bookworm: apt-get install -t bookworm-backports mesa-vulkan-drivers, as .ci/run does)',
  }, tests);
}

const TRIPLETS: Partial<Record<string, string>> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/** How the Vulkan loader or driver is missing on Linux, or false. */
function vulkanAbsence(): string | false {
  const paths = (v: string | undefined): string[] => (v ?? '').split(':').filter((p) => p !== '');
  const triplet = TRIPLETS[process.arch];
  const libDirs = [...paths(process.env.LD_LIBRARY_PATH), ...(triplet ? [`/usr/lib/${triplet}`, `/lib/${triplet}`] : []), '/usr/lib64', '/lib64', '/usr/lib', '/usr/local/lib'];
  if (!libDirs.some((d) => existsSync(join(d, 'libvulkan.so.1')))) return `no libvulkan.so.1, the Vulkan loader, in ${libDirs.join(', ')}`;
  // Where the loader looks for driver manifests (VK_DRIVER_FILES or VK_ICD_FILENAMES replace the search).
  const chosen = paths(process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES);
  if (chosen.length > 0) return chosen.some((f) => existsSync(f)) ? false : `VK_DRIVER_FILES or VK_ICD_FILENAMES names no manifest that exists: ${chosen.join(', ')}`;
  const dataDirs = paths(process.env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share');
  const icdDirs = ['/etc/vulkan/icd.d', ...dataDirs.map((d) => join(d, 'vulkan/icd.d'))];
  const hasManifest = (dir: string): boolean => {
    try {
      return readdirSync(dir).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  };
  return icdDirs.some(hasManifest) ? false : `no driver manifest (*.json) in ${icdDirs.join(', ')}`;
}

/**
 * Creates a WebGPU session for `model` with ONNX Runtime's CPU fallback disabled: it fails
 * when any node would run on the CPU provider, so it proves the graph runs wholly on the GPU.
 */
export async function webgpuOnlySession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 3, extra: { session: { disable_cpu_ep_fallback: '1' } } });
}
