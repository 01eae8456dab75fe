// electron-builder configuration (typed): AppImage and deb on Linux, NSIS on Windows, dmg
// on macOS. Native modules (better-sqlite3, ONNX Runtime's binding and shared libraries)
// must stay outside the asar archive to load. Signing comes from the environment
// (CSC_LINK / CSC_KEY_PASSWORD, APPLE_ID...), never from this file.
//
// What ships: the bundled shell (dist/electron: main.cjs, preload.cjs), the built renderer,
// and the engine as TypeScript sources (main/, db/, native-models/) that the shell loads
// through tsx, as the CLI does. Each job's process (Electron's binary run as Node) and the
// generation worker thread load those sources, and tsx compiles them with esbuild's native
// binary: all of these are unpacked from the archive, so workers and child processes read
// real files.
import type { Configuration } from 'electron-builder';

const config: Configuration = {
  appId: 'org.afdstudio.app',
  productName: 'AfD Studio',
  executableName: 'afd-studio',
  copyright: 'Copyright © 2026 The AfD Studio authors',
  directories: { output: 'dist/installers', buildResources: 'build' },
  files: [
    'package.json',
    'dist/electron/**',
    'renderer/dist/**',
    'main/**',
    'db/**',
    'native-models/**',
    'models/default/**',
    'data/hh-rlhf/**',
    '!**/*.test.ts',
    '!**/testing/**',
    '!**/*.py',
    '!**/*.map',
  ],
  asar: true,
  asarUnpack: [
    '**/*.node',
    'node_modules/better-sqlite3/**',
    'node_modules/onnxruntime-node/**',
    'node_modules/onnxruntime-common/**',
    'node_modules/tsx/**',
    'node_modules/esbuild/**',
    'node_modules/@esbuild/**',
    'main/**',
    'db/**',
    'native-models/**',
    'models/default/**',
  ],
  // better-sqlite3 is rebuilt against Electron's Node ABI; onnxruntime-node ships N-API binaries.
  npmRebuild: true,
  nodeGypRebuild: false,
  extraMetadata: { main: 'dist/electron/main.cjs' },
  linux: { target: ['AppImage', 'deb'], category: 'Science', synopsis: 'Align language models from demonstrations alone', maintainer: 'The AfD Studio authors' },
  deb: { depends: ['libnss3', 'libgtk-3-0', 'libxss1', 'libasound2'] },
  appImage: { artifactName: '${productName}-${version}-${arch}.${ext}' },
  win: { target: [{ target: 'nsis', arch: ['x64'] }] },
  nsis: { oneClick: false, perMachine: false, allowToChangeInstallationDirectory: true, createDesktopShortcut: true },
  mac: { target: [{ target: 'dmg', arch: ['x64', 'arm64'] }], category: 'public.app-category.developer-tools', hardenedRuntime: true },
  dmg: { title: '${productName} ${version}' },
};

export default config;
