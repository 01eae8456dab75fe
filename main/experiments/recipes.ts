// Ready-made experiments (the experiments view's one-click recipes, `afd demo`, `afd
// repro`): the commented YAML files in experiments/, parsed and checked at load.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { JsonObject } from '../../db/json.ts';
import type { Recipe } from './contract.ts';
import { parseExperiment } from './experiment.ts';

export const EXPERIMENTS_DIR = fileURLToPath(new URL('../../experiments/', import.meta.url));

const CATALOGUE: readonly Omit<Recipe, 'definition'>[] = [
  { id: 'paper-recipe', title: "The paper's recipe", summary: 'SFT, then a reward model that separates SFT samples from pi_0 samples, then Best-of-N over it: alignment from demonstrations alone.' },
  { id: 'quick', title: 'Quick check (1 minute)', summary: 'The same recipe on a handful of prompts, to see that everything works before a real run.' },
  { id: 'demo', title: 'HH-Harmless demo (10 minutes)', summary: 'The microcosm at small scale with a gold judge: SFT, four rewards, Best-of-N, length baseline and evaluation.' },
  { id: 'hh-harmless', title: 'HH-Harmless reproduction', summary: 'Every method row of the reproduction (hours on a CPU).' },
];

/** Each recipe's definition as written in its file (defaults are filled in when it runs). */
export function loadRecipes(): Recipe[] {
  return CATALOGUE.map((r) => {
    const definition = parseYaml(readFileSync(`${EXPERIMENTS_DIR}${r.id}.yaml`, 'utf8')) as JsonObject;
    parseExperiment(definition); // a broken shipped recipe fails here, loudly
    return { ...r, definition };
  });
}

export const RECIPES: readonly Recipe[] = loadRecipes();
