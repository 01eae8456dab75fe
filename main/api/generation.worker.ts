// The interactive-generation worker: keeps models loaded within a memory budget
// (model-cache.ts), loads one model at a time, reports each request's phases (reading the
// weights, preparing, generating; generation-load.ts), streams each token's text back,
// and stops between decoding steps when asked (see generation-protocol.ts).
//
// Requests whose models are loaded generate at the same time: the decoding loop yields
// between steps, so two models in Compare stream side by side (each at about half the
// speed) instead of the second waiting for the first to finish. A Best-of-N request
// (generation-best-of.ts) samples and scores instead of streaming tokens.
import { parentPort } from 'node:worker_threads';
import type { GenerationResult } from '../../native-models/generate/generator.ts';
import { GenerationCancelledError } from '../../native-models/generate/generator.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { chooseProvider } from '../../native-models/runtime/providers.ts';
import type { ProviderSetting } from './contract.ts';
import { bestOfN } from './generation-best-of.ts';
import { loadForGeneration, weightFiles, type LoadedForGeneration } from './generation-load.ts';
import type { GenCommand, GeneratedRow, GenerateRequest, GenReply, ProviderProbe } from './generation-protocol.ts';
import { ModelCache, type Acquired } from './model-cache.ts';

if (parentPort === null) throw new Error('main/api/generation.worker.ts runs only as a worker thread; the studio service starts it.');
const port = parentPort;
const post = (m: GenReply): void => port.postMessage(m);

/**
 * Loads so far on each provider, a guide for the next: a model's memory and the time its
 * preparation took are estimated from the earlier load closest in weight bytes, scaled to
 * the new model's bytes, when it is within a factor of 4 (a model's fixed costs make a
 * much smaller one a poor guide).
 */
interface LoadRecord {
  weightBytes: number;
  /** Resident memory the load added, when it was measured alone (see below). */
  memory: number | null;
  prepareMs: number;
}
const loads = new Map<string, LoadRecord[]>();
const GUIDE_RATIO = 4;

/** The value per weight byte of the closest earlier load that has one, or null. */
function perWeightByte(provider: string, bytes: number, value: (r: LoadRecord) => number | null): number | null {
  let best: LoadRecord | null = null;
  const distance = (r: LoadRecord): number => Math.abs(Math.log(r.weightBytes / bytes));
  for (const r of loads.get(provider) ?? []) if (value(r) !== null && (best === null || distance(r) < distance(best))) best = r;
  return best === null || distance(best) > Math.log(GUIDE_RATIO) ? null : (value(best) as number) / best.weightBytes;
}

/**
 * A loaded model's memory is measured as the growth of the process's resident memory
 * while it loads (loads run one at a time): SmolLM2-135M (538 MB of float32 weights) took
 * about 0.7 GB with its weights mapped from their file, 1.8 GB with them read into memory
 * (a folder of f16 or bf16 weights). A generation running meanwhile grows the memory too
 * (its cache, ONNX Runtime's arena), so such a load is not measured but estimated
 * (above), or else counts these many times its weight bytes. Job threads allocating
 * meanwhile still blur a measurement.
 */
const DEFAULT_MEMORY_PER_WEIGHT_BYTE = { mapped: 1.5, read: 3.5 } as const;
/** Generations running now, and whether one ran during the load in progress. */
let generating = 0;
let loadDisturbed = false;

const cache = new ModelCache<LoadedForGeneration>({ budgetBytes: 0, dispose: (m) => m.release() });

const aborts = new Map<number, AbortController>();
/** The load in progress: loads run one at a time (two at once would need both models' memory and share the cores anyway). */
let loading: Promise<unknown> = Promise.resolve();

port.on('message', (cmd: GenCommand) => {
  switch (cmd.type) {
    case 'generate': {
      const abort = new AbortController();
      aborts.set(cmd.id, abort);
      void generate(cmd.id, cmd.request, abort.signal).finally(() => aborts.delete(cmd.id));
      return;
    }
    case 'cancel':
      aborts.get(cmd.id)?.abort();
      return;
    case 'probe':
      void probe(cmd.provider).then((p) => post({ type: 'probed', id: cmd.id, probe: p }));
      return;
    case 'cache':
      if (cmd.budget !== null) cache.setBudget(cmd.budget);
      post({ type: 'cached', id: cmd.id, state: cache.state() });
      return;
    case 'unload':
      cache.clear();
      post({ type: 'cached', id: cmd.id, state: cache.state() });
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

/**
 * The model of `dir` on `provider`: at once when it is loaded (or loading), else loaded
 * with its phases reported after the loads before it, unless the request is stopped first.
 */
function acquire(id: number, dir: string, provider: ProviderSetting, signal: AbortSignal): Promise<Acquired<LoadedForGeneration>> {
  if (cache.has(dir, provider)) return cache.acquire(dir, provider, 0, () => Promise.reject(new Error('unreachable: the model is cached')));
  const next = loading.then(async () => {
    if (signal.aborted) throw new GenerationCancelledError([], 0);
    // Loaded meanwhile by the request before this one (the same model twice in a row).
    if (cache.has(dir, provider)) return cache.acquire(dir, provider, 0, () => Promise.reject(new Error('unreachable: the model is cached')));
    return load(id, dir, provider);
  });
  loading = next.catch(() => undefined);
  return next;
}

async function load(id: number, dir: string, provider: ProviderSetting): Promise<Acquired<LoadedForGeneration>> {
  const weightBytes = (await weightFiles(dir)).reduce((s, f) => s + f.bytes, 0);
  // Before the load, whether its weights will be mapped is not known: the larger default makes room.
  const guide = perWeightByte(provider, weightBytes, (r) => r.memory);
  return cache.acquire(dir, provider, weightBytes * (guide ?? DEFAULT_MEMORY_PER_WEIGHT_BYTE.read), async () => {
    const rss0 = process.memoryUsage.rss();
    loadDisturbed = generating > 0;
    const model = await loadForGeneration(dir, {
      provider: provider === 'auto' ? undefined : (provider as ProviderName),
      prepareMsPerByte: weightBytes > 0 ? perWeightByte(provider, weightBytes, (r) => r.prepareMs) : null,
      onPhase: (p) => post({ type: 'phase', id, ...p }),
    });
    const grown = process.memoryUsage.rss() - rss0;
    if (model.weightBytes === 0) return { value: model, bytes: Math.max(0, grown) };
    // A model holds at least its weights (or their mapped pages).
    const memory = loadDisturbed ? null : Math.max(grown, model.weightBytes);
    loads.set(provider, [...(loads.get(provider) ?? []).slice(-9), { weightBytes: model.weightBytes, memory, prepareMs: model.prepareMs }]);
    const perByte = guide ?? DEFAULT_MEMORY_PER_WEIGHT_BYTE[model.weightsMapped ? 'mapped' : 'read'];
    return { value: model, bytes: memory ?? Math.round(weightBytes * perByte), estimated: memory === null, runsOn: model.generator.provider };
  });
}

const STOPPED = Symbol('stopped');
const stopped = (signal: AbortSignal): Promise<typeof STOPPED> => new Promise((resolve) => {
  if (signal.aborted) resolve(STOPPED);
  else signal.addEventListener('abort', () => resolve(STOPPED), { once: true });
});

async function generate(id: number, req: GenerateRequest, signal: AbortSignal): Promise<void> {
  const cancelled = (partial: GeneratedRow[]): GenReply => ({ type: 'failed', id, message: 'The generation was stopped.', cancelled: true, partial });
  try {
    cache.setBudget(req.cacheBytes);
    const acquiring = acquire(id, req.modelDir, req.provider, signal);
    const first = await Promise.race([acquiring, stopped(signal)]);
    if (first === STOPPED) {
      // Answered now. A load already under way goes on (the model stays loaded for next
      // time, and later loads wait for it); one not begun is skipped.
      post(cancelled(req.prompts.map(() => ({ text: '', tokens: 0, finishReason: 'cancelled' }))));
      await acquiring.then((a) => a.release(), () => undefined);
      return;
    }
    try {
      post(await run(id, req, first.value, signal));
    } finally {
      first.release();
    }
  } catch (err) {
    if (err instanceof GenerationCancelledError) post(cancelled(err.partial.map(row)));
    else post({ type: 'failed', id, message: (err as Error).message, cancelled: false, partial: null });
  }
}

async function run(id: number, req: GenerateRequest, model: LoadedForGeneration, signal: AbortSignal): Promise<GenReply> {
  const { generator, tokenizer, eos } = model;
  const s = req.sampling;
  const chat = s.chat ?? tokenizer.hasChatTemplate;
  const prompts = req.prompts.map((p, i) => {
    const text = chat && tokenizer.hasChatTemplate ? tokenizer.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }) : p;
    const ids = tokenizer.encode(text);
    if (ids.length === 0) throw new Error(`Prompt ${i + 1} is empty after tokenization; give some text.`);
    return { text, ids };
  });
  const temperature = s.temperature ?? 0.8;
  const greedy = temperature === 0;
  const maxNewTokens = s.maxTokens ?? 128;
  const sampling = {
    maxNewTokens,
    greedy: greedy || undefined,
    temperature: greedy ? undefined : temperature,
    topP: greedy ? undefined : s.topP,
    topK: greedy ? undefined : s.topK,
    seed: greedy ? undefined : s.seed,
  };
  const decode = (ids: readonly number[]): string => tokenizer.decode(ids, { skipSpecialTokens: true });
  generating++;
  loadDisturbed = true; // a load in progress, if any, is no longer measured alone
  try {
    if (req.bestOf !== undefined) {
      // The reward model is loaded for this request only: idle models make room for it first.
      const rewardWeightBytes = (await weightFiles(req.bestOf.rewardDir)).reduce((sum, f) => sum + f.bytes, 0);
      cache.makeRoom(rewardWeightBytes * (perWeightByte(req.provider, rewardWeightBytes, (r) => r.memory) ?? DEFAULT_MEMORY_PER_WEIGHT_BYTE.read));
      const rows = await bestOfN({ generator, decode, eos, prompts, n: req.bestOf.n, rewardDir: req.bestOf.rewardDir, sampling, signal, phase: (p) => post({ type: 'phase', id, ...p }) });
      return { type: 'done', id, rows };
    }
    const counts = req.prompts.map(() => 0);
    post({ type: 'phase', id, phase: 'generating', done: 0, total: maxNewTokens, etaMs: null });
    const results = await generator.generate(prompts.map((p) => p.ids), {
      ...sampling,
      eosTokenIds: eos,
      decode,
      onToken: (e) => post({ type: 'token', id, row: e.row, index: counts[e.row]++, text: e.textDelta ?? '' }),
      signal,
    });
    return { type: 'done', id, rows: results.map(row) };
  } finally {
    generating--;
  }
}

function row(r: GenerationResult): GeneratedRow {
  return { text: r.text ?? '', tokens: r.tokens.length, finishReason: r.finishReason };
}
