// Model lineage for the models view: init → SFT → reward model → policy, as a tree of
// parents and the models trained from them.
import type { ModelInfo } from '../../../main/api/contract.ts';

export interface LineageNode {
  model: ModelInfo;
  depth: number;
}

/** The models in tree order (each parent followed by its descendants), with their depth.
 *  A model whose parent is missing (deleted) starts a tree of its own; cycles are broken. */
export function lineageRows(models: readonly ModelInfo[]): LineageNode[] {
  const ids = new Set(models.map((m) => m.id));
  const children = new Map<number, ModelInfo[]>();
  const roots: ModelInfo[] = [];
  for (const m of [...models].sort((a, b) => a.id - b.id)) {
    if (m.parentId === null || !ids.has(m.parentId) || m.parentId === m.id) roots.push(m);
    else children.set(m.parentId, [...(children.get(m.parentId) ?? []), m]);
  }
  const out: LineageNode[] = [];
  const seen = new Set<number>();
  const visit = (m: ModelInfo, depth: number): void => {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    out.push({ model: m, depth });
    for (const c of children.get(m.id) ?? []) visit(c, depth + 1);
  };
  for (const r of roots) visit(r, 0);
  // Models only reachable through a cycle are listed at the top level.
  for (const m of models) visit(m, 0);
  return out;
}

/** "init", "SFT", "reward model", "policy"... for a model's stage. */
export function stageLabel(m: Pick<ModelInfo, 'kind' | 'stage'>): string {
  if (m.kind === 'builtin') return 'init (built in)';
  if (m.stage === null) return m.kind === 'imported' ? 'init (imported)' : 'trained';
  const labels: Record<string, string> = { sft: 'SFT', reward: 'reward model', rm: 'reward model', rl: 'policy (RL)', airl: 'policy (AIRL)', dpo: 'policy (DPO)', spin: 'policy (SPIN)', bon: 'Best-of-N', pretrain: 'init (pretrained)' };
  return labels[m.stage] ?? m.stage;
}

/** The chain from the root to `id`: ["default", "sft-1", "rm-1"]. */
export function ancestry(models: readonly ModelInfo[], id: number): ModelInfo[] {
  const byId = new Map(models.map((m) => [m.id, m]));
  const chain: ModelInfo[] = [];
  for (let m = byId.get(id); m !== undefined && !chain.includes(m); m = m.parentId === null ? undefined : byId.get(m.parentId)) chain.unshift(m);
  return chain;
}
