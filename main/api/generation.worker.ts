// The interactive-generation worker: loads models (a small cache of the last two), runs
// one request at a time, streams each token's text back, and stops between decoding
// steps when asked (see generation-protocol.ts).
import { parentPort } from 'node:worker_threads';
import { importHfModel } from '../../native-models/checkpoint/index.ts';
import type { GenerationResult } from '../../native-models/generate/generator.ts';
import { GenerationCancelledError, Generator } from '../../native-models/generate/generator.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { chooseProvider } from '../../native-models/runtime/providers.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import type { ProviderSetting } from './contract.ts';
import type { GenCommand, GeneratedRow, GenerateRequest, GenReply, ProviderProbe } from './generation-protocol.ts';

if (parentPort === null) throw new Error('main/api/generation.worker.ts runs only as a worker thread; the studio service starts it.');
const port = parentPort;
const post = (m: GenReply): void => port.postMessage(m);

interface Loaded {
  generator: Generator;
  tokenizer: Tokenizer;
  eos: number[];
}

const CACHE = 2;
const loaded = new Map<string, Promise<Loaded>>();
const aborts = new Map<number, AbortController>();
let chain: Promise<void> = Promise.resolve();

port.on('message', (cmd: GenCommand) => {
  switch (cmd.type) {
    case 'generate': {
      const abort = new AbortController();
      aborts.set(cmd.id, abort);
      // One request at a time: the models share the CPU or GPU anyway.
      chain = chain.then(() => generate(cmd.id, cmd.request, abort.signal)).finally(() => aborts.delete(cmd.id));
      return;
    }
    case 'cancel':
      aborts.get(cmd.id)?.abort();
      return;
    case 'probe':
      void probe(cmd.provider).then((p) => post({ type: 'probed', id: cmd.id, probe: p }));
      return;
  }
});

async function probe(setting: ProviderSetting): Promise<ProviderProbe> {
  try {
    const choice = await chooseProvider(setting === 'auto' ? {} : { force: setting });
    return { provider: choice.provider, reason: choice.reason, tried: choice.tried };
  } catch (err) {
    return { provider: null, reason: (err as Error).message, tried: [] };
  }
}

function load(dir: string, provider: ProviderSetting): Promise<Loaded> {
  const key = `${provider}|${dir}`;
  let l = loaded.get(key);
  if (l !== undefined) {
    loaded.delete(key); // re-inserted below: the map's order is the order of use
  } else {
    l = (async () => {
      const [model, tokenizer] = await Promise.all([importHfModel(dir), Tokenizer.fromFolder(dir)]);
      const generator = await Generator.create(model.family, model.config, model.weights, provider === 'auto' ? {} : { provider: provider as ProviderName });
      const gc = model.generationConfig ?? {};
      const eos = [gc.eos_token_id, tokenizer.eosTokenId].flat().filter((x): x is number => typeof x === 'number');
      return { generator, tokenizer, eos: [...new Set(eos)] };
    })();
    l.catch(() => loaded.delete(key));
  }
  loaded.set(key, l);
  while (loaded.size > CACHE) {
    const [oldest, evicted] = loaded.entries().next().value as [string, Promise<Loaded>];
    loaded.delete(oldest);
    void evicted.then((e) => e.generator.release()).catch(() => undefined);
  }
  return l;
}

async function generate(id: number, req: GenerateRequest, signal: AbortSignal): Promise<void> {
  try {
    if (signal.aborted) throw new GenerationCancelledError(req.prompts.map(() => ({ tokens: [], text: '', finishReason: 'cancelled' })), 0);
    const { generator, tokenizer, eos } = await load(req.modelDir, req.provider);
    const s = req.sampling;
    const chat = s.chat ?? tokenizer.hasChatTemplate;
    const prompts = req.prompts.map((p, i) => {
      const text = chat && tokenizer.hasChatTemplate ? tokenizer.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }) : p;
      const ids = tokenizer.encode(text);
      if (ids.length === 0) throw new Error(`Prompt ${i + 1} is empty after tokenization; give some text.`);
      return ids;
    });
    const temperature = s.temperature ?? 0.8;
    const greedy = temperature === 0;
    const counts = req.prompts.map(() => 0);
    const results = await generator.generate(prompts, {
      maxNewTokens: s.maxTokens ?? 128,
      greedy: greedy || undefined,
      temperature: greedy ? undefined : temperature,
      topP: greedy ? undefined : s.topP,
      topK: greedy ? undefined : s.topK,
      seed: greedy ? undefined : s.seed,
      eosTokenIds: eos,
      decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
      onToken: (e) => post({ type: 'token', id, row: e.row, index: counts[e.row]++, text: e.textDelta ?? '' }),
      signal,
    });
    post({ type: 'done', id, rows: results.map(row) });
  } catch (err) {
    const cancelled = err instanceof GenerationCancelledError;
    post({ type: 'failed', id, message: (err as Error).message, cancelled, partial: cancelled ? err.partial.map(row) : null });
  }
}

function row(r: GenerationResult): GeneratedRow {
  return { text: r.text ?? '', tokens: r.tokens.length, finishReason: r.finishReason };
}
