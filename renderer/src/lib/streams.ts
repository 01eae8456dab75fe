// Streamed generations: phases and tokens arrive as events, possibly before the call that
// started the stream has returned, so they are kept by stream id from the first event on.
// What a pane shows while it waits (phaseView) is computed here, from the page's clock.
import type { BestOfCandidate, BestOfOutcome, GenerationPhase, StudioEvent } from '../../../main/api/contract.ts';
import { formatBytes, formatDuration } from './format.ts';

export interface StreamState {
  /** Token texts by index, so a late or repeated event cannot scramble the text. */
  parts: string[];
  text: string;
  done: boolean;
  finishReason: string | null;
  error: string | null;
  tokens: number;
  /** null until the first phase event (the stream has just been started). */
  phase: GenerationPhase | null;
  /** Progress within the phase as last reported; `at`: when it came (ms, the page's clock). */
  progress: { done: number; total: number | null; etaMs: number | null; at: number };
  /** When the current phase began (page clock). */
  phaseSince: number;
  /** A finished Best-of-N stream's candidates and pick (its text is the pick's). */
  bestOf: BestOfOutcome | null;
}

export function emptyStream(now = Date.now()): StreamState {
  return { parts: [], text: '', done: false, finishReason: null, error: null, tokens: 0, phase: null, progress: { done: 0, total: null, etaMs: null, at: now }, phaseSince: now, bestOf: null };
}

/** Applies a generation event to the streams (mutating and returning the changed one), or
 *  returns null for any other event. The final text of 'generation.done' wins. */
export function applyGenerationEvent(streams: Record<string, StreamState>, e: StudioEvent, now = Date.now()): StreamState | null {
  if (e.type !== 'generation.token' && e.type !== 'generation.done' && e.type !== 'generation.phase') return null;
  const s = streams[e.streamId] ?? (streams[e.streamId] = emptyStream(now));
  if (e.type === 'generation.phase') {
    if (s.done) return s;
    if (e.phase !== s.phase) {
      s.phase = e.phase;
      s.phaseSince = now;
    }
    s.progress = { done: e.done, total: e.total, etaMs: e.etaMs, at: now };
  } else if (e.type === 'generation.token') {
    if (s.done) return s;
    s.parts[e.index] = e.text;
    s.text = s.parts.join('');
    s.tokens = Math.max(s.tokens, e.index + 1);
  } else {
    s.done = true;
    s.text = e.text;
    s.tokens = e.tokens;
    s.finishReason = e.finishReason;
    s.error = e.error;
    s.bestOf = e.bestOf ?? null;
  }
  return s;
}

/** A Best-of-N pick's candidates, highest reward first, each with its place in sampling
 *  order and whether it is the one chosen (equal rewards keep sampling order). */
export function rankedCandidates(o: BestOfOutcome): (BestOfCandidate & { index: number; chosen: boolean })[] {
  return o.candidates.map((c, index) => ({ ...c, index, chosen: index === o.chosen })).sort((a, b) => b.reward - a.reward || a.index - b.index);
}

/** A reward as a pane shows it: 3 significant digits, a real minus sign. */
export function formatReward(r: number): string {
  return (Math.abs(r) >= 100 ? r.toFixed(0) : r.toPrecision(3)).replace('-', '−');
}

/** What a pane says about an unfinished stream: a line, a percent (null: unknown) and the time left (null: unknown). */
export interface PhaseView {
  label: string;
  percent: number | null;
  etaMs: number | null;
}

/** The view of a stream's phase at `now`, or null once it is done. */
export function phaseView(s: StreamState, now = Date.now()): PhaseView | null {
  if (s.done) return null;
  const elapsed = Math.max(0, now - s.phaseSince);
  const since = elapsed >= 1000 ? ` · ${formatDuration(elapsed / 1000)}` : '';
  const p = s.progress;
  // Time left as reported, counted down since it came.
  const left = p.etaMs === null ? null : Math.max(0, p.etaMs - (now - p.at));
  switch (s.phase) {
    case null:
      return { label: 'Starting', percent: null, etaMs: null };
    case 'queued':
      return { label: `Waiting for another model to load${since}`, percent: null, etaMs: null };
    case 'loading':
      return { label: `Reading the model: ${formatBytes(p.done)} of ${formatBytes(p.total)}`, percent: p.total === null || p.total === 0 ? null : Math.min(100, (100 * p.done) / p.total), etaMs: left };
    case 'preparing': {
      // The session is built in one call: the share of the time it took last time, when known.
      const percent = left === null ? null : Math.min(99, (100 * elapsed) / (elapsed + left));
      return { label: `Preparing the model (building its ONNX Runtime session)${since}`, percent, etaMs: left };
    }
    case 'generating': {
      const total = p.total;
      if (s.tokens === 0) return { label: `Generating: reading the prompt${since}`, percent: total === null ? null : 0, etaMs: null };
      const rate = elapsed > 0 ? (1000 * s.tokens) / elapsed : null;
      const etaMs = rate === null || total === null ? null : (1000 * Math.max(0, total - s.tokens)) / rate;
      return {
        label: `${s.tokens} of at most ${total ?? '?'} tokens${rate === null ? '' : ` · ${rate.toFixed(rate < 10 ? 1 : 0)} tokens/s`}`,
        percent: total === null || total === 0 ? null : Math.min(100, (100 * s.tokens) / total),
        etaMs,
      };
    }
    case 'sampling': {
      // Finished answers so far; the time left from their rate in this phase.
      const total = p.total ?? 0;
      const etaMs = p.done === 0 || total === 0 ? null : (elapsed / p.done) * Math.max(0, total - p.done);
      return { label: `Best-of-${total}: ${p.done} of ${total} samples drawn${since}`, percent: total === 0 ? null : Math.min(100, (100 * p.done) / total), etaMs };
    }
    case 'scoring': {
      const total = p.total ?? 0;
      return { label: `Scoring ${total} samples with the reward model: ${p.done} done${since}`, percent: total === 0 ? null : Math.min(100, (100 * p.done) / total), etaMs: null };
    }
  }
}
