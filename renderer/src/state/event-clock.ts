// Events and fetches race: an answer computed before an event was sent can arrive after
// it. Every event that carries a whole value (a run, an experiment's progress) ticks the
// clock for its key; a fetch notes the time it began and keeps, for each key, the
// event's value when an event for that key came while it was in flight.

export class EventClock<K> {
  #now = 0;
  readonly #last = new Map<K, number>();

  /** An event for `key` has been applied. */
  tick(key: K): void {
    this.#last.set(key, ++this.#now);
  }

  /** The time a fetch begins. */
  now(): number {
    return this.#now;
  }

  /** Whether an event for `key` came after `since` (so the fetch's value for it is not newer). */
  changedSince(key: K, since: number): boolean {
    return (this.#last.get(key) ?? -1) > since;
  }
}
