// Which CUDA and cuDNN libraries ONNX Runtime's CUDA provider needs and the dynamic loader
// cannot find: what `afd doctor` names when the provider is installed but fails to load.
//
// The provider (libonnxruntime_providers_cuda.so of onnxruntime-node 1.30, built for CUDA 13)
// links against libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and the
// driver's libcuda.so.1, which `ldd` resolves; cuDNN it opens itself at run time
// (libcudnn.so.9, a string in the library, not a link), so `ldd` cannot see it: it is looked
// for where dlopen looks (LD_LIBRARY_PATH, the ldconfig cache, the default folders).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Libraries the provider opens at run time rather than links (see the header). */
export const CUDA_DLOPENED = ['libcudnn.so.9'] as const;

/** What the search needs from the system; tests give their own. */
export interface LibrarySearch {
  /** `ldd`'s output for a library under `env` (LD_LIBRARY_PATH counts), or null where ldd cannot run. */
  ldd(lib: string, env: NodeJS.ProcessEnv): string | null;
  /** `ldconfig -p`'s output ('' where it cannot run). */
  ldconfigCache(): string;
  env: NodeJS.ProcessEnv;
  exists(path: string): boolean;
}

export const systemSearch: LibrarySearch = {
  ldd: (lib, env) => {
    const r = spawnSync('ldd', [lib], { encoding: 'utf8', env });
    return r.error || r.status !== 0 ? null : r.stdout;
  },
  ldconfigCache: () => {
    for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
      const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8' });
      if (!r.error && r.status === 0) return r.stdout;
    }
    return '';
  },
  env: process.env,
  exists: existsSync,
};

const DEFAULT_DIRS = ['/lib64', '/usr/lib64', '/lib', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'];

/** Whether dlopen would find `soname`: LD_LIBRARY_PATH, then the ldconfig cache, then the default folders. */
export function findsLibrary(soname: string, search: LibrarySearch = systemSearch): boolean {
  const dirs = (search.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  if (dirs.some((d) => search.exists(join(d, soname)))) return true;
  if (search.ldconfigCache().split('\n').some((line) => line.trim().startsWith(`${soname} `))) return true;
  return DEFAULT_DIRS.some((d) => search.exists(join(d, soname)));
}

/**
 * The libraries `providerLib` needs that the loader cannot find, in the order it needs
 * them: its links as `ldd` reports them ("=> not found"), then those it opens at run time
 * (`dlopened`). Throws a sentence where `ldd` cannot run.
 */
export function missingLibraries(providerLib: string, dlopened: readonly string[] = CUDA_DLOPENED, search: LibrarySearch = systemSearch): string[] {
  const out = search.ldd(providerLib, search.env);
  if (out === null) throw new Error(`ldd could not read ${providerLib} (ldd comes with glibc: libc-bin on Debian and Ubuntu)`);
  const missing = [...out.matchAll(/^\s*(\S+)\s*=>\s*not found/gm)].map((m) => m[1]);
  for (const soname of dlopened) if (!missing.includes(soname) && !findsLibrary(soname, search)) missing.push(soname);
  return missing;
}

/** What each missing library belongs to, for the sentence that names them. */
function owner(soname: string): string {
  if (/^libcudnn/.test(soname)) return 'cuDNN 9';
  if (soname === 'libcuda.so.1') return 'the NVIDIA driver';
  if (/^lib(cudart|cublas|cublasLt|curand|cufft|nvrtc|nvJitLink)\b/.test(soname)) return 'the CUDA 13 runtime';
  return 'a library the provider links';
}

/** One sentence naming the missing libraries, grouped by what provides them, and how to fix it. */
export function describeMissing(missing: readonly string[]): string {
  const groups = new Map<string, string[]>();
  for (const lib of missing) groups.set(owner(lib), [...(groups.get(owner(lib)) ?? []), lib]);
  const named = [...groups].map(([what, libs]) => `${libs.join(', ')} (${what})`).join('; ');
  return `the CUDA provider needs libraries the loader cannot find: ${named}. Install CUDA 13 and cuDNN 9 `
    + '(or pip install nvidia-cuda-runtime nvidia-cublas nvidia-curand nvidia-cudnn-cu13), and put their lib folders on LD_LIBRARY_PATH';
}
