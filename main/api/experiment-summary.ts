// An experiment's summary from its stages' progress: the one rule that the server's
// experiments.list and the renderer's experiments state both apply, so that a summary
// updated from an 'experiment.progress' event reads as the list would. Types only: the
// renderer bundles this module.
import type { ExperimentProgress, ExperimentSummary, StageState } from './contract.ts';

/** The experiment's state from its stages': what needs attention first. */
export function experimentState(p: ExperimentProgress): StageState {
  const states = p.stages.map((s) => s.state);
  for (const s of ['running', 'queued', 'failed', 'interrupted', 'paused', 'cancelled'] as const) if (states.includes(s)) return s;
  if (states.length > 0 && states.every((s) => s === 'done')) return 'done';
  return 'pending';
}

export function experimentSummary(e: { id: number; name: string; createdAt: string }, p: ExperimentProgress): ExperimentSummary {
  return { id: e.id, name: e.name, createdAt: e.createdAt, state: experimentState(p), stages: p.stages.length, stagesDone: p.stages.filter((s) => s.state === 'done').length };
}
