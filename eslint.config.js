// Lint rules, including the import boundaries of DESIGN.md §4 and docs/ARCHITECTURE.md:
//   renderer --> main (API contract only) --> native-models, db
// native-models is the ML engine: no Electron, no database, no application code.
// Inside main/, each folder imports only the layers below it (MAIN_LAYERS):
//   cli, electron --> server --> api --> experiments, startup --> jobs --> stages --> libraries
//   (the libraries are datasets, models, schema, eval and report).
import svelte from 'eslint-plugin-svelte';
import tseslint from 'typescript-eslint';

const boundary = (g) => ({ group: [g], message: `this layer may not import ${g} (see docs/ARCHITECTURE.md)` });
const noImportsFrom = (...groups) => ({ 'no-restricted-imports': ['error', { patterns: groups.map(boundary) }] });
// A folder of main/ as a file inside main/ names it: '../jobs/runner.ts', '../../jobs/runner.ts'
// from a subfolder (the patterns match the import as written, not the file it resolves to).
// The Electron package itself (a pattern without a slash would also match a folder named electron).
const ELECTRON = { regex: '^electron(/|$)', message: 'only main/electron/ may import electron: the rest also runs in plain Node (see docs/ARCHITECTURE.md)' };
const mainFolder = (f) => ({ regex: `^(\\.\\./)+(main/)?${f}/`, message: `this layer may not import main/${f}/ (see docs/ARCHITECTURE.md)` });

// Of main/, the renderer reads the API contract, the experiments' contract (types), one
// rule it shares with the server and the schema layer (Node-free).
const MAIN_FOR_RENDERER = { regex: '^(\\.\\./)+main/(?!(api/contract|api/experiment-summary|experiments/contract)\\.ts$|schema/)', message: 'the renderer reaches main/ only through main/api/contract.ts, main/experiments/contract.ts, main/api/experiment-summary.ts and main/schema/ (see docs/ARCHITECTURE.md)' };
const rendererImports = (...groups) => ({ 'no-restricted-imports': ['error', { patterns: [...groups.map(boundary), MAIN_FOR_RENDERER] }] });

// main/'s folders, top layer first. A folder may import the folders in the rows after its
// own, never one before it, nor (except the libraries) a folder of its own row.
const MAIN_LAYERS = [
  ['cli', 'electron'],
  ['server'],
  ['api'],
  ['experiments', 'startup'],
  ['jobs'],
  ['stages'],
  ['datasets', 'models', 'schema', 'eval', 'report'],
];
const mainBoundaries = MAIN_LAYERS.flatMap((row, i) => row.map((folder) => {
  const above = MAIN_LAYERS.slice(0, i).flat();
  const siblings = i === MAIN_LAYERS.length - 1 ? [] : row.filter((f) => f !== folder);
  return { folder, forbidden: [...above, ...siblings] };
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'renderer/dist/**', 'scratch/**', '**/*.py'] },
  ...tseslint.configs.recommended,
  ...svelte.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // <script lang="ts"> in components and the runes in .svelte.ts modules: TypeScript's parser inside Svelte's.
  { files: ['**/*.svelte', '**/*.svelte.ts'], languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } } },
  // The state classes keep what views read in $state fields; their Maps and Sets are bookkeeping no view reads (reads in flight, events held during a read), which a SvelteMap would make effects depend on.
  { files: ['renderer/src/state/**/*.svelte.ts'], rules: { 'svelte/prefer-svelte-reactivity': 'off' } },
  { files: ['native-models/**/*.ts'], rules: noImportsFrom('**/main/**', '**/db/**', '**/renderer/**', 'electron', 'better-sqlite3') },
  { files: ['db/**/*.ts'], rules: noImportsFrom('**/main/**', '**/renderer/**', 'electron', 'onnxruntime-node') },
  // Only the Electron shell loads Electron: the rest also runs in plain Node (the CLI, afd serve, workers).
  ...mainBoundaries.map(({ folder, forbidden }) => ({
    files: [`main/${folder}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns: [...forbidden.map(mainFolder), ...(folder === 'electron' ? [] : [ELECTRON])] }] },
  })),
  { files: ['renderer/**/*.ts', 'renderer/**/*.svelte'], rules: rendererImports('**/native-models/**', '**/db/**', 'electron', 'onnxruntime-node', 'better-sqlite3', 'node:*') },
  // The renderer's tests run in Node (they build the app and drive Chromium), so node:* is allowed there.
  { files: ['renderer/**/*.test.ts', 'renderer/test/**/*.ts'], rules: rendererImports('**/native-models/**', '**/db/**', 'electron', 'onnxruntime-node', 'better-sqlite3') },
  { files: ['renderer/test/fake-bridge.js'], languageOptions: { sourceType: 'script' } },
);
