// Blind A/B voting: the keys that vote (shown on screen) and the tally's sentences. The
// server randomizes which model is shown left (A) and right (B) and records that order.
import type { Tally, Vote } from '../../../main/api/contract.ts';

export const VOTE_KEYS: readonly { key: string; vote: Vote; label: string }[] = [
  { key: 'A', vote: 'A', label: 'left is better' },
  { key: 'B', vote: 'B', label: 'right is better' },
  { key: 'T', vote: 'tie', label: 'tie' },
  { key: 'S', vote: 'skip', label: 'skip' },
];

/** The vote a key press means, or null (modifier keys mean another shortcut; typing in a
 *  text field is not a vote). */
export function voteForKey(e: { key: string; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean; inTextField?: boolean }): Vote | null {
  if (e.ctrlKey || e.metaKey || e.altKey || e.inTextField) return null;
  return VOTE_KEYS.find((k) => k.key === e.key.toUpperCase())?.vote ?? null;
}

/** "60% (95% CI 31–83%)" for model A, or a sentence saying there are no votes yet. */
export function describeWinRate(t: Tally): string {
  if (t.winRateA === null || t.n === 0) return 'no votes yet';
  return `${pct(t.winRateA)} (95% CI ${pct(t.ci95[0])}–${pct(t.ci95[1])})`;
}

function pct(v: number): string {
  return `${Math.round(v * 100)}%`;
}
