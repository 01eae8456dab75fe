// No module of main/, db/ or native-models/ imports itself back through a chain of imports.
// Every import counts: values, types (`import type`, `typeof import(...)`), re-exports and
// dynamic `import()`, since a cycle of any kind means two modules that cannot be read,
// tested or moved apart. ESLint's import-x/no-cycle was measured for this (docs/ARCHITECTURE.md,
// "Layers"): it misses cycles closed by type-only imports, which this walk sees.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const ROOTS = ['main', 'db', 'native-models'];
const SOURCE = /\.(ts|mts|mjs|js)$/;

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (SOURCE.test(e.name)) out.push(p);
  }
  return out;
}

/** Each source file (repository-relative) and the files it imports by a relative path. */
function importGraph(roots: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of roots.flatMap((r) => sources(join(REPO, r)))) {
    // TypeScript's own scan: imports, exports ... from, import() and import types, comments skipped.
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('./') || s.startsWith('../'));
    graph.set(relative(REPO, file), [...new Set(targets.map((s) => relative(REPO, resolve(dirname(file), s))))]);
  }
  return graph;
}

/** One cycle of the graph as the path that closes it (its first module again at the end), or null. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (m: string): string[] | null => {
    if (state.get(m) === 'done') return null;
    if (state.get(m) === 'open') return [...path.slice(path.indexOf(m)), m];
    state.set(m, 'open');
    path.push(m);
    for (const next of graph.get(m) ?? []) {
      const cycle = visit(next);
      if (cycle !== null) return cycle;
    }
    path.pop();
    state.set(m, 'done');
    return null;
  };
  for (const m of [...graph.keys()].sort()) {
    const cycle = visit(m);
    if (cycle !== null) return cycle;
  }
  return null;
}

test('the walk finds a cycle, however it is closed, and only a cycle', () => {
  const g = (edges: Record<string, string[]>) => new Map(Object.entries(edges));
  assert.deepEqual(findCycle(g({ a: ['b'], b: ['c'], c: ['a'] })), ['a', 'b', 'c', 'a']);
  assert.deepEqual(findCycle(g({ a: ['a'] })), ['a', 'a']);
  assert.deepEqual(findCycle(g({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] })), null, 'two paths to one module are no cycle');
  // Type-only imports and dynamic imports are edges too.
  const scanned = ts.preProcessFile("import type { A } from './a.ts';\nconst b = await import('../b.ts');\ntype C = typeof import('./c.ts');\nexport * from './d.ts';", true, true);
  assert.deepEqual(scanned.importedFiles.map((f) => f.fileName), ['./a.ts', '../b.ts', './c.ts', './d.ts']);
});

test('main/, db/ and native-models/ have no import cycles', () => {
  const graph = importGraph(ROOTS);
  assert.ok(graph.size > 300, `only ${graph.size} modules found under ${ROOTS.join(', ')}`);
  assert.ok(graph.get('main/experiments/driver.ts')?.includes('main/jobs/runner.ts'), "the driver's imports are seen");
  const cycle = findCycle(graph);
  assert.equal(cycle, null, `import cycle: ${cycle?.join(' -> ')}; move what both sides need into a module of its own, below both`);
});
