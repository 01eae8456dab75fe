// Streamed generations (Try a prompt, Compare) and the models the generation worker keeps
// loaded (Settings). A stream's phases and tokens come as events, possibly before the call
// that started it has returned, so every stream is kept from its first event on
// (lib/streams.ts applies them); the oldest finished ones are let go past a bound. The
// loaded models change when a generation ends (it may have loaded one or released one to
// make room), which the event does not say: while a view shows them they are read again
// then, once per burst.
import type { ModelCacheInfo, StudioApi, StudioEvent } from '../../../main/api/contract.ts';
import { errorText } from '../lib/context.ts';
import { applyGenerationEvent, type StreamState } from '../lib/streams.ts';
import { Refresh } from './refresh.ts';

/** Finished streams kept (a comparison has up to 8 models x 20 prompts). */
const DONE_KEPT = 1000;

export class GenerationsState {
  readonly #api: StudioApi;
  #streams = $state<Record<string, StreamState>>({});
  /** Finished streams, oldest first. */
  readonly #finished = new Set<string>();
  #cache = $state<ModelCacheInfo | null>(null);
  #cacheError = $state<string | null>(null);
  readonly #refresh = new Refresh(() => this.#fetchCache());

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** Every stream kept, by id. */
  get streams(): Readonly<Record<string, StreamState>> {
    return this.#streams;
  }
  stream(streamId: string): StreamState | undefined {
    return this.#streams[streamId];
  }
  /** The loaded models; null until the first read has answered. */
  get cache(): ModelCacheInfo | null {
    return this.#cache;
  }
  get cacheError(): string | null {
    return this.#cacheError;
  }

  /** A view shows the loaded models (see Refresh.watch); its error is `cacheError`. */
  watchCache(): () => void {
    return this.#refresh.watch();
  }
  /** After a change the page made (the memory budget). */
  refreshCache(): Promise<void> {
    return this.#refresh.refresh();
  }

  /** Releases every loaded model; rejects with the studio's sentence. */
  async unload(): Promise<void> {
    this.#cache = await this.#api.call('generation.unload', {});
  }

  handle(e: StudioEvent): void {
    if (applyGenerationEvent(this.#streams, e) === null || e.type !== 'generation.done') return;
    this.#finished.delete(e.streamId);
    this.#finished.add(e.streamId);
    for (const id of this.#finished) {
      if (this.#finished.size <= DONE_KEPT) break;
      this.#finished.delete(id);
      delete this.#streams[id];
    }
    this.#refresh.soon();
  }

  close(): void {
    this.#refresh.cancel();
  }

  async #fetchCache(): Promise<void> {
    try {
      this.#cache = await this.#api.call('generation.cache', {});
      this.#cacheError = null;
    } catch (err) {
      this.#cacheError = errorText(err);
    }
  }
}
