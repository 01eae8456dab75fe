// Node module hooks that compile the renderer's state classes (*.svelte.ts) as Vite does for
// the page: TypeScript removed (typescript's transpileModule), then Svelte's compileModule
// for the browser runtime, so that $state and $derived are live in unit tests. Register
// before importing them: register('../../test/svelte-hooks.mjs', import.meta.url).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compileModule } from 'svelte/compiler';
import ts from 'typescript';

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.svelte.ts')) return nextLoad(url, context);
  const filename = fileURLToPath(url);
  const typed = await readFile(filename, 'utf8');
  const js = ts.transpileModule(typed, { fileName: filename, compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true } }).outputText;
  const { js: out } = compileModule(js, { filename, generate: 'client', dev: false });
  return { format: 'module', source: out.code, shortCircuit: true };
}
