// Bundles the Electron shell: main/electron/main.ts -> dist/electron/main.cjs and
// main/electron/preload.ts -> dist/electron/preload.cjs (the sandboxed preload must be a
// single file). Packages stay external: electron is provided by the runtime, the native
// modules (better-sqlite3, onnxruntime-node) cannot be bundled, and the engine is loaded
// from its TypeScript sources through tsx (see main/electron/backend.ts).
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  external: ['electron', 'better-sqlite3', 'onnxruntime-node'],
  logLevel: 'info',
};

await build({ ...common, entryPoints: { main: 'main/electron/main.ts' }, outdir: 'dist/electron', outExtension: { '.js': '.cjs' } });
await build({ ...common, entryPoints: { preload: 'main/electron/preload.ts' }, outdir: 'dist/electron', outExtension: { '.js': '.cjs' } });
