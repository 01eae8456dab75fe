// Builds the renderer (Svelte 5 + Vite) into renderer/dist/, which `afd serve` and the
// Electron window load. Run from the repository root: `npm run build:renderer`.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

export default defineConfig({
  root,
  // Relative asset URLs, so the same build loads over http:// (afd serve) and file:// (Electron).
  base: './',
  plugins: [svelte({ compilerOptions: { runes: true } })],
  build: {
    outDir: `${root}/dist`,
    emptyOutDir: true,
    // No source maps or remote anything in the shipped bundle; the page only talks to its origin.
    sourcemap: false,
    target: 'es2022',
    assetsInlineLimit: 0,
  },
  server: { host: '127.0.0.1' },
  logLevel: 'warn',
});
