// Lint rules, including the import boundaries of DESIGN.md §4:
//   renderer --> main (API contract only) --> native-models, db
// native-models is the ML engine: no Electron, no database, no application code.
import tseslint from 'typescript-eslint';

const noImportsFrom = (...groups) => ({
  'no-restricted-imports': ['error', { patterns: groups.map((g) => ({ group: [g], message: `this layer may not import ${g} (see docs/ARCHITECTURE.md)` })) }],
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'renderer/dist/**', 'scratch/**', '**/*.py'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['native-models/**/*.ts'], rules: noImportsFrom('**/main/**', '**/db/**', '**/renderer/**', 'electron', 'better-sqlite3') },
  { files: ['db/**/*.ts'], rules: noImportsFrom('**/main/**', '**/renderer/**', 'electron', 'onnxruntime-node') },
  { files: ['renderer/**/*.ts'], rules: noImportsFrom('**/native-models/**', '**/db/**', 'electron', 'onnxruntime-node', 'better-sqlite3', 'node:*') },
  // The renderer's tests run in Node (they build the app and drive Chromium), so node:* is allowed there.
  { files: ['renderer/**/*.test.ts', 'renderer/test/**/*.ts'], rules: noImportsFrom('**/native-models/**', '**/db/**', 'electron', 'onnxruntime-node', 'better-sqlite3') },
  { files: ['renderer/test/fake-bridge.js'], languageOptions: { sourceType: 'script' } },
);
