// Streamed generations: tokens arrive as events, possibly before the call that started the
// stream has returned, so they are kept by stream id from the first event on.
import type { StudioEvent } from '../../../main/api/contract.ts';

export interface StreamState {
  /** Token texts by index, so a late or repeated event cannot scramble the text. */
  parts: string[];
  text: string;
  done: boolean;
  finishReason: string | null;
  error: string | null;
  tokens: number;
}

export function emptyStream(): StreamState {
  return { parts: [], text: '', done: false, finishReason: null, error: null, tokens: 0 };
}

/** Applies a generation event to the streams (mutating and returning the changed one), or
 *  returns null for any other event. The final text of 'generation.done' wins. */
export function applyGenerationEvent(streams: Record<string, StreamState>, e: StudioEvent): StreamState | null {
  if (e.type !== 'generation.token' && e.type !== 'generation.done') return null;
  const s = streams[e.streamId] ?? (streams[e.streamId] = emptyStream());
  if (e.type === 'generation.token') {
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
  }
  return s;
}
