// electron-builder configuration (typed): AppImage and deb on Linux, NSIS on Windows, dmg
// on macOS. Native modules (better-sqlite3, ONNX Runtime's binding and shared libraries)
// must stay outside the asar archive to load. Signing comes from the environment
// (CSC_LINK / CSC_KEY_PASSWORD, APPLE_ID...), never from this file.
import type { Configuration } from 'electron-builder';

const config: Configuration = {
  appId: 'org.afdstudio.app',
  productName: 'AfD Studio',
  copyright: 'Copyright © 2026 The AfD Studio authors',
  directories: { output: 'dist/installers', buildResources: 'build' },
  files: ['package.json', 'bin/**', 'main/**', 'native-models/**', 'db/**', 'renderer/dist/**', 'models/**', '!**/*.test.ts', '!**/*.py'],
  asar: true,
  asarUnpack: ['**/*.node', '**/onnxruntime-node/bin/**', '**/better-sqlite3/build/**'],
  linux: { target: ['AppImage', 'deb'], category: 'Science' },
  win: { target: ['nsis'] },
  mac: { target: ['dmg'], category: 'public.app-category.developer-tools', hardenedRuntime: true },
  nsis: { oneClick: false, allowToChangeInstallationDirectory: true },
};

export default config;
