// The models (Models, Compare, the pipeline composer, the chat-template choice of an
// import). A run that finishes may have added one (an import, a training stage), which
// its event does not say, so while a view shows the list it is read again then, once per
// burst of runs.
import type { ModelInfo, StudioApi, StudioEvent } from '../../../main/api/contract.ts';
import { errorText } from '../lib/context.ts';
import { Refresh } from './refresh.ts';

export class ModelsState {
  readonly #api: StudioApi;
  #list = $state<ModelInfo[] | null>(null);
  #error = $state<string | null>(null);
  readonly #refresh = new Refresh(() => this.#fetch());

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** Newest first; null until the first read has answered. */
  get list(): ModelInfo[] | null {
    return this.#list;
  }
  get error(): string | null {
    return this.#error;
  }

  /** A view shows the list (see Refresh.watch); its error is `error`. */
  watch(): () => void {
    return this.#refresh.watch();
  }

  handle(e: StudioEvent): void {
    if (e.type === 'run.status' && e.run.status === 'done') this.#refresh.soon();
  }

  close(): void {
    this.#refresh.cancel();
  }

  async #fetch(): Promise<void> {
    try {
      this.#list = await this.#api.call('models.list', {});
      this.#error = null;
    } catch (err) {
      this.#error = errorText(err);
    }
  }
}
