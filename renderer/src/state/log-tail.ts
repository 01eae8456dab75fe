// Log lines come two ways: a tail read from the store, and events. Lines that came as
// events while the tail was in flight may be in it too (when they were written before it
// was read); then they are its last lines, in order, and are kept once. (A line repeated
// word for word at that boundary cannot be told from its copy and is kept once too.)

/** The tail followed by the lines buffered while it was read, without those it holds already. */
export function joinTail<T>(tail: readonly T[], buffered: readonly T[], same: (a: T, b: T) => boolean): T[] {
  for (let m = Math.min(tail.length, buffered.length); m > 0; m--) {
    const start = tail.length - m;
    if (buffered.slice(0, m).every((line, i) => same(tail[start + i], line))) return [...tail, ...buffered.slice(m)];
  }
  return [...tail, ...buffered];
}

/** The last `max` lines, dropping the oldest in place (a long run's log stays bounded). */
export function keepLast<T>(lines: T[], max: number): void {
  if (lines.length > max) lines.splice(0, lines.length - max);
}
