// Batched generation with a KV cache, and sequence scoring, for any model family.
//
// One generate call: a PREFILL run over the left-padded prompts, then one DECODE run per
// new token, both runs of one graph (graphs.ts, 'step'). Sampling happens on the host
// between runs (sampler.ts), one seeded Rng per row, so a row's output depends on its
// prompt, options and seed only, not on the other rows of the batch. The cache lives on
// the host between runs (kv-store.ts): each run returns only its new positions, because
// outputs leave onnxruntime-node slowly while inputs go in without a copy. Finished rows
// are dropped from the batch (the cache is compacted, and padding columns no remaining
// row needs are cut), so they cost nothing.
//
// On WebGPU the graphs are written for its kernels (graphs.ts) and the cache stays in the
// GPU's memory instead (device-kv.ts): each run returns the whole extended cache there,
// and only the last position's logits, what sampling reads, come to the host.
//
// The weights are the graphs' initializers, so new weights need a new generator (a
// session compiles and packs them: seconds on SmolLM2). A LoRA fine-tune's need not:
// created with `lora`, the generator takes the base weights frozen and the adapters as
// inputs fed on every run (graphs.ts adapterInputs), and setAdapters changes them between
// generations (on WebGPU copied to the GPU once, not at every run).
//
// session.run blocks the JavaScript thread for a whole run (DESIGN.md §5): call this from
// a worker. Between steps the loop yields to the event loop, so an AbortSignal fired from
// a message handler is seen after at most one step.

import ort from 'onnxruntime-node';
import { randomInt } from 'node:crypto';
import * as T from '../ir/index.ts';
import type { ModelFamily } from '../models/family.ts';
import type { LoraSpec } from '../models/lora.ts';
import { deviceFeeds, deviceInputsOf, type DeviceInputs } from '../runtime/device-feeds.ts';
import { chooseProvider, type ProviderName } from '../runtime/providers.ts';
import { SessionCache } from '../runtime/session.ts';
import { Rng } from '../train/rng.ts';
import { checkTokens, leftPad } from './batch.ts';
import { compactionModel, DeviceKvCache } from './device-kv.ts';
import { KvStore } from './kv-store.ts';
import { adapterInputs, buildGraph, cacheNames, checkSize, frozenParams, type AdapterInputs, type FrozenParams, type GenerationWeights, type GraphKind } from './graphs.ts';
import { Sampler, validateSampling, type SamplingParams } from './sampler.ts';

export interface GeneratorOptions {
  /** Execution provider; default: chosen by runtime/providers.ts (cuda, webgpu, cpu). */
  provider?: ProviderName;
  /** Threads inside one op; default: all cores. */
  threads?: number;
  /** Share compiled sessions with other users (default: a cache of this generator's own). */
  sessions?: SessionCache;
  /** Fewest cache slots added when a batch's KV cache grows (default 16; see kv-store.ts). */
  cacheGrowth?: number;
  /** Let ORT pack the weights of products for its GEMM (default true; see runtime/session.ts). */
  prepacking?: boolean;
  /**
   * LoRA adapters fed as graph inputs: `weights` are then the base model's (frozen, packed
   * once), `adapters` the first values of every adapter of `spec` (models/lora.ts names and
   * shapes), and setAdapters changes them without compiling anything.
   */
  lora?: { spec: LoraSpec; adapters: ReadonlyMap<string, Float32Array> };
}

export interface TokenEvent {
  /** Index of the prompt this token continues. */
  row: number;
  tokenId: number;
  /**
   * Text that became final with this token (only with `decode`). Text that could still
   * turn into a stop string, or an incomplete UTF-8 character, is held back until it is
   * settled; the deltas of a row add up to its result's `text`.
   */
  textDelta?: string;
}

export interface GenerateOptions extends SamplingParams {
  /** New tokens per row at most. */
  maxNewTokens: number;
  /**
   * Seed of the sampling: one per row, or one number s from which row i uses s + i. The
   * same seed gives the same tokens for a row whatever else is in the batch. Default: a
   * random seed per row, reported in the results.
   */
  seed?: number | readonly number[];
  /** A row ends when it samples one of these (from the caller or generation_config.json). */
  eosTokenIds?: readonly number[];
  /** A row ends when its decoded text contains one of these; its text is cut before it. Needs `decode`. */
  stopStrings?: readonly string[];
  /** Token ids to text (the tokenizer's decode); needed for stop strings and text deltas. */
  decode?: (ids: readonly number[]) => string;
  /** Called for every generated token, in order of rows within a step. */
  onToken?: (e: TokenEvent) => void;
  /**
   * The raw next-token logits of a row (before penalties and sampling), as a view valid
   * only during the call: for log-probabilities, entropies or checks.
   */
  onLogits?: (e: { row: number; step: number; logits: Float32Array }) => void;
  /** Cancels between steps; generate then rejects with a GenerationCancelledError. */
  signal?: AbortSignal;
}

/** 'cancelled' appears only in the partial results of a GenerationCancelledError. */
export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerationResult {
  /** Generated token ids, without the prompt; they end with the EOS token when the row stopped on one. */
  tokens: number[];
  /** decode(tokens) without the EOS token and cut before a stop string (only with `decode`). */
  text?: string;
  finishReason: FinishReason;
  /** The stop string that ended the row. */
  stopString?: string;
  /** The seed of the row's sampling (absent for greedy decoding). */
  seed?: number;
}

export interface ScoreResult {
  /** log p(response | prompt), natural log. */
  sum: number;
  /** log p(response_t | prompt, response_<t), one per response token. */
  perToken: number[];
}

export interface GenerationStats {
  rows: number;
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeSteps: number;
  /** Time of the decode runs, appending each run's new position to the host cache included. */
  decodeMs: number;
  /** Host time between runs: sampling, stop strings, callbacks, cache compaction. */
  hostMs: number;
  /** Largest cache capacity reached (slots per row, padding and empty slots included). */
  maxCacheLength: number;
}

/** Generation stopped by its AbortSignal; `partial` holds what each row had so far. */
export class GenerationCancelledError extends Error {
  override readonly name = 'AbortError';
  constructor(readonly partial: GenerationResult[], readonly steps: number) {
    super(`Generation was cancelled after ${steps} step${steps === 1 ? '' : 's'}; the tokens generated so far are in the error's "partial" results.`);
  }
}

interface Row {
  index: number;
  prompt: readonly number[];
  tokens: number[];
  seen?: Set<number>;
  rng?: Rng;
  seed?: number;
  /** Padding columns at the left of this row in the current cache. */
  pad: number;
  finish?: FinishReason;
  stopString?: string;
  text: string;
  /** Characters of `text` already sent as deltas. */
  emitted: number;
  /** Characters of the decoded text already searched for stop strings. */
  scanned: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A compiled graph and what its feeds need besides the caller's (device-feeds.ts; nothing on the CPU). */
interface Compiled {
  session: ort.InferenceSession;
  inputs: DeviceInputs;
}

/** Logits of all positions per run at most (the [B, T, V] buffers of scoring), default 64M floats (256 MB). */
const DEFAULT_SCORE_BUDGET = 1 << 26;

export class Generator<C = unknown> {
  /** Statistics of the last generate call. */
  lastStats?: GenerationStats;
  readonly vocabSize: number;
  /** Longest sequence the model's positions allow (n_positions / max_position_embeddings), if it has a limit. */
  readonly maxPositions?: number;
  private readonly layers: number;
  private readonly kvHeads: number;
  private readonly headDim: number;
  private readonly lazy = new Map<GraphKind, Promise<Compiled>>();
  private compaction?: Promise<ort.InferenceSession>;
  /** The adapters' current values, fed to every run (on WebGPU tensors in the GPU's memory that this generator owns). */
  private adapterFeeds: Record<string, ort.Tensor> = {};
  private upload?: Promise<ort.InferenceSession>;

  private constructor(
    readonly family: ModelFamily<C>,
    readonly config: C,
    private readonly frozen: FrozenParams,
    private readonly sessions: SessionCache,
    private readonly ownSessions: boolean,
    readonly provider: ProviderName,
    readonly threads: number | undefined,
    private readonly cacheGrowth: number,
    private readonly prepacking: boolean,
    private readonly adapters?: AdapterInputs,
  ) {
    this.vocabSize = family.vocabSize(config);
    const { layers, kvHeads, headDim } = family.cacheShape(config);
    this.layers = layers;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    const hf = family.toHfConfig(config);
    const limit = hf.n_positions ?? hf.max_position_embeddings;
    this.maxPositions = typeof limit === 'number' && limit > 0 ? limit : undefined;
  }

  /**
   * Builds and compiles the generation graph (scoring's are compiled on first use).
   * `weights` in memory are copied into each graph; mapped weights (checkpoint/hf-import.ts
   * mapHfModel) stay in their files, which ONNX Runtime maps. With `lora` they are the base
   * weights, and the adapters are inputs.
   */
  static async create<C>(family: ModelFamily<C>, config: C, weights: GenerationWeights, opts: GeneratorOptions = {}): Promise<Generator<C>> {
    const provider = opts.provider ?? (await chooseProvider()).provider;
    const adapters = opts.lora ? adapterInputs(family, config, opts.lora.spec) : undefined;
    const g = new Generator(family, config, frozenParams(family, config, weights), opts.sessions ?? new SessionCache(), !opts.sessions, provider, opts.threads, opts.cacheGrowth ?? 16, opts.prepacking ?? true, adapters);
    try {
      if (opts.lora) await g.setAdapters(opts.lora.adapters);
      await g.session('step');
    } catch (e) {
      await g.release();
      throw e;
    }
    return g;
  }

  /**
   * New values for the LoRA adapters (a generator created with `lora`), used from the next
   * generate or score on: every adapter of the spec, by name. On the CPU the runs read
   * these arrays themselves, so leave them unchanged while they are set.
   */
  async setAdapters(values: ReadonlyMap<string, Float32Array>): Promise<void> {
    const adapters = this.adapters;
    if (!adapters) throw new Error('This generator holds its weights as they were given; only one created with the `lora` option takes new adapters (else create a generator from the new weights).');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, leaf] of adapters.params) {
      const data = values.get(name);
      const shape = leaf.shape as number[];
      if (!data) throw new Error(`The adapters have no tensor ${name}; give all ${adapters.params.size} adapters of the LoRA spec.`);
      checkSize(`The adapter ${name}`, data.length, shape);
      feeds[name] = new ort.Tensor('float32', data, shape);
    }
    const stray = [...values.keys()].find((k) => !adapters.params.has(k));
    if (stray !== undefined) throw new Error(`${stray} is not one of this generator's LoRA adapters (its spec gives ${[...adapters.params.keys()].slice(0, 2).join(', ')}, ...).`);
    const next = this.onDevice ? await this.toDevice(feeds) : feeds;
    this.disposeAdapters();
    this.adapterFeeds = next;
  }

  /** Copies of host tensors in the GPU's memory, by one run of an Identity graph whose outputs stay there. */
  private async toDevice(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const leaves = [...this.adapters!.params];
    const onDevice = (name: string): string => `${name}:device`;
    this.upload ??= this.sessions.get(T.emitOnnx({
      outputs: Object.fromEntries(leaves.map(([name, v]) => [onDevice(name), v])), inputs: leaves.map(([, v]) => v), name: 'afd-adapters-to-device', target: 'webgpu',
    }).bytes, { provider: this.provider, intraOpThreads: this.threads, cpuFallback: false, deviceOutputs: leaves.map(([name]) => onDevice(name)) });
    const out = await (await this.upload).run(feeds);
    return Object.fromEntries(Object.keys(feeds).map((name) => [name, out[onDevice(name)]]));
  }

  /** Frees the adapters this generator copied to the GPU. */
  private disposeAdapters(): void {
    for (const t of Object.values(this.adapterFeeds)) if (t.location !== 'cpu') t.dispose();
    this.adapterFeeds = {};
  }

  /** Whether the graphs are written for the GPU and the cache stays there (WebGPU). */
  get onDevice(): boolean {
    return this.provider === 'webgpu';
  }

  /** The compiled session of one graph kind, built on first use. */
  async session(kind: GraphKind): Promise<ort.InferenceSession> {
    return (await this.compiled(kind)).session;
  }

  private compiled(kind: GraphKind): Promise<Compiled> {
    let s = this.lazy.get(kind);
    if (!s) {
      const graph = buildGraph(kind, this.family, this.config, this.frozen, { target: this.onDevice ? 'webgpu' : 'cpu', ...(this.adapters ? { adapters: this.adapters } : {}) });
      const external = this.frozen.external;
      const inputs = deviceInputsOf(graph); // not the graph: its bytes may hold the weights
      s = this.sessions.get(graph.bytes, {
        provider: this.provider, intraOpThreads: this.threads, prepacking: this.prepacking,
        ...(external ? { externalDataDir: external.dir, externalDataIdentity: external.identity } : {}),
        ...(this.onDevice ? { cpuFallback: false, deviceOutputs: kind === 'step' ? graph.outputNames.filter((n) => n !== 'logits') : [] } : {}),
      }).then((session) => ({ session, inputs }));
      this.lazy.set(kind, s);
      s.catch(() => this.lazy.delete(kind));
    }
    return s;
  }

  /** Runs a compiled graph on the caller's feeds and the adapters, completed for the device (device-feeds.ts). */
  private async run(c: Compiled, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
    return c.session.run(deviceFeeds(c.inputs, { ...feeds, ...this.adapterFeeds }));
  }

  /** Drops rows and leading columns of a cache kept on the device (device-kv.ts). */
  private readonly compact = async (feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> => {
    const shape = { layers: this.layers, kvHeads: this.kvHeads, headDim: this.headDim };
    this.compaction ??= this.sessions.get(compactionModel(shape), {
      provider: this.provider, intraOpThreads: this.threads, cpuFallback: false,
      deviceOutputs: Array.from({ length: 2 * this.layers }, (_, k) => `kept.${k}`),
    });
    return (await this.compaction).run(feeds);
  };

  async generate(prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<GenerationResult[]> {
    const V = this.vocabSize;
    this.checkGenerate(prompts, opts);
    const greedy = opts.greedy === true || opts.temperature === 0;
    const sampler = new Sampler(V, opts);
    const eos = new Set(opts.eosTokenIds ?? []);
    const usePenalty = (opts.repetitionPenalty ?? 1) !== 1;
    const seeds = greedy ? undefined : rowSeeds(opts.seed, prompts.length);
    const rows: Row[] = prompts.map((prompt, index) => ({
      index, prompt, tokens: [], pad: 0, text: '', emitted: 0, scanned: 0,
      seen: usePenalty ? new Set(prompt) : undefined,
      seed: seeds?.[index], rng: seeds ? new Rng(seeds[index]) : undefined,
    }));
    const stats: GenerationStats = { rows: rows.length, promptTokens: prompts.reduce((s, p) => s + p.length, 0), generatedTokens: 0, prefillMs: 0, decodeSteps: 0, decodeMs: 0, hostMs: 0, maxCacheLength: 0 };
    this.lastStats = stats;
    if (opts.maxNewTokens === 0 || rows.length === 0) return rows.map((r) => this.result(r, opts, 'length'));
    if (opts.signal?.aborted) throw new GenerationCancelledError(rows.map((r) => this.result(r, opts, 'cancelled')), 0);

    const graph = await this.compiled('step');
    const padded = leftPad(prompts);
    const shape = { layers: this.layers, kvHeads: this.kvHeads, headDim: this.headDim };
    // The cache never needs more slots than the prompt width plus the new tokens fed back.
    const store = this.onDevice ? new DeviceKvCache(shape, rows.length, this.compact) : new KvStore(shape, rows.length, this.cacheGrowth, padded.width + opts.maxNewTokens - 1);
    // The columns a cache starts with (the device's masked one) are padding of every row.
    rows.forEach((r, i) => (r.pad = store.length + padded.pads[i]));
    try {
      return await this.decode(graph, store, rows, padded, opts, sampler, eos, stats);
    } finally {
      if (store instanceof DeviceKvCache) store.dispose();
    }
  }

  /** The prefill and the decoding steps of generate, on the cache `store`. */
  private async decode(graph: Compiled, store: KvStore | DeviceKvCache, rows: Row[], padded: ReturnType<typeof leftPad>, opts: GenerateOptions, sampler: Sampler, eos: ReadonlySet<number>, stats: GenerationStats): Promise<GenerationResult[]> {
    const V = this.vocabSize;
    let t0 = performance.now();
    // The prefill: the whole prompt on an empty cache.
    const mask = store instanceof DeviceKvCache ? store.promptMask(padded.mask, padded.width) : padded.mask;
    let logits = await this.runStep(graph, store, padded.tokens, padded.positions, mask, padded.width);
    stats.prefillMs = performance.now() - t0;
    stats.maxCacheLength = store.capacity;

    let active = rows;
    for (let step = 0; ; step++) {
      t0 = performance.now();
      for (let j = 0; j < active.length; j++) {
        const r = active[j];
        const row = logits.subarray(j * V, (j + 1) * V);
        opts.onLogits?.({ row: r.index, step, logits: row });
        const token = sampler.pick(row, r.seen, r.rng);
        this.accept(r, token, opts, eos);
      }
      stats.generatedTokens += active.length;
      const still = active.filter((r) => !r.finish);
      if (still.length === 0) {
        stats.hostMs += performance.now() - t0;
        break;
      }
      if (still.length < active.length) {
        // Drop finished rows, and the padding columns no remaining row needs.
        const cut = Math.min(...still.map((r) => r.pad));
        await store.select(still.map((r) => active.indexOf(r)), cut);
        for (const r of still) r.pad -= cut;
        active = still;
      }
      const tokens = BigInt64Array.from(active, (r) => BigInt(r.tokens[r.tokens.length - 1]));
      const positions = BigInt64Array.from(active, (r) => BigInt(r.prompt.length + r.tokens.length - 1));
      stats.hostMs += performance.now() - t0;

      await yieldToEventLoop();
      if (opts.signal?.aborted) throw new GenerationCancelledError(rows.map((r) => this.result(r, opts, r.finish ?? 'cancelled')), step + 1);

      t0 = performance.now();
      logits = await this.runStep(graph, store, tokens, positions, store.mask(active.map((r) => r.pad)), 1);
      stats.decodeMs += performance.now() - t0;
      stats.decodeSteps++;
      stats.maxCacheLength = Math.max(stats.maxCacheLength, store.capacity);
    }
    return rows.map((r) => this.result(r, opts, r.finish!));
  }

  /**
   * log p(response | prompt) for each pair, summed and per token: one forward over
   * prompt + response, batched (longest first, in runs whose [B, T, V] logits stay under
   * `maxLogits` floats).
   */
  async score(prompts: readonly (readonly number[])[], responses: readonly (readonly number[])[], opts: { maxLogits?: number } = {}): Promise<ScoreResult[]> {
    if (prompts.length !== responses.length) throw new Error(`score needs one response per prompt; got ${prompts.length} prompts and ${responses.length} responses.`);
    prompts.forEach((p, i) => {
      if (p.length === 0) throw new Error(`Prompt ${i} is empty; scoring needs at least one prompt token (e.g. the BOS token) to condition the first response token on.`);
    });
    checkTokens(prompts, this.vocabSize, 'Prompt');
    checkTokens(responses, this.vocabSize, 'Response');
    const seqs = prompts.map((p, i) => [...p, ...responses[i]]);
    this.checkLength(seqs, 'prompt + response');
    const out: ScoreResult[] = seqs.map(() => ({ sum: 0, perToken: [] }));
    const order = seqs.map((_, i) => i).filter((i) => responses[i].length > 0).sort((a, b) => seqs[b].length - seqs[a].length);
    const budget = opts.maxLogits ?? DEFAULT_SCORE_BUDGET;
    const score = order.length > 0 ? await this.compiled('score') : undefined;
    for (let start = 0; start < order.length;) {
      // Longest first: the first row of a chunk sets its width.
      const width = seqs[order[start]].length; // >= 2: a prompt token and a response token
      const n = Math.max(1, Math.min(order.length - start, Math.floor(budget / (width * this.vocabSize))));
      const chunk = order.slice(start, start + n);
      start += n;
      const padded = leftPad(chunk.map((i) => seqs[i]));
      const dims = [chunk.length, padded.width];
      const r = await this.run(score!, {
        tokens: new ort.Tensor('int64', padded.tokens, dims),
        positions: new ort.Tensor('int64', padded.positions, dims),
        attention_mask: new ort.Tensor('int64', padded.mask, dims),
      });
      const lp = r.logprobs.data as Float32Array; // [b, width - 1]
      chunk.forEach((i, b) => {
        // Response token k sits in column pad + |prompt| + k; its log-prob in the column before.
        const first = b * (padded.width - 1) + padded.pads[b] + prompts[i].length - 1;
        const perToken = Array.from(lp.subarray(first, first + responses[i].length));
        out[i] = { sum: perToken.reduce((s, x) => s + x, 0), perToken };
      });
    }
    return out;
  }

  /** Logits of every position of each sequence ([length * V] per row), by one full forward: the reference for cached decoding. */
  async logits(seqs: readonly (readonly number[])[]): Promise<Float32Array[]> {
    const empty = seqs.findIndex((s) => s.length === 0);
    if (empty >= 0) throw new Error(`Sequence ${empty} is empty; there is nothing to compute logits for.`);
    checkTokens(seqs, this.vocabSize, 'Sequence');
    this.checkLength(seqs, 'sequence');
    const V = this.vocabSize;
    const padded = leftPad(seqs);
    const dims = [seqs.length, padded.width];
    const r = await this.run(await this.compiled('logits'), {
      tokens: new ort.Tensor('int64', padded.tokens, dims),
      positions: new ort.Tensor('int64', padded.positions, dims),
      attention_mask: new ort.Tensor('int64', padded.mask, dims),
    });
    const all = r.logits.data as Float32Array;
    return seqs.map((s, b) => all.slice((b * padded.width + padded.pads[b]) * V, (b + 1) * padded.width * V));
  }

  /**
   * Disposes the sessions when the generator owns its session cache; a cache passed in
   * `sessions` is left to its owner (another generator of the same weights shares them).
   */
  async release(): Promise<void> {
    this.disposeAdapters(); // before the session that made them
    this.lazy.clear();
    this.compaction = undefined;
    this.upload = undefined;
    if (this.ownSessions) await this.sessions.clear();
  }

  private checkGenerate(prompts: readonly (readonly number[])[], opts: GenerateOptions): void {
    if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new Error(`maxNewTokens must be a whole number >= 0, got ${opts.maxNewTokens}.`);
    validateSampling(opts);
    prompts.forEach((p, i) => {
      if (p.length === 0) throw new Error(`Prompt ${i} is empty; give at least one token (e.g. the BOS token).`);
    });
    checkTokens(prompts, this.vocabSize, 'Prompt');
    this.checkLength(prompts, 'prompt');
    if (opts.eosTokenIds?.some((t) => !Number.isInteger(t) || t < 0 || t >= this.vocabSize)) throw new Error(`eosTokenIds must be token ids in 0..${this.vocabSize - 1}, got [${opts.eosTokenIds.join(', ')}].`);
    if (opts.stopStrings?.length && !opts.decode) throw new Error('Stop strings need a decode function (token ids to text) to be checked.');
    if (opts.stopStrings?.some((s) => s.length === 0)) throw new Error('A stop string is empty; every stop string needs at least one character.');
    if (Array.isArray(opts.seed) && opts.seed.length !== prompts.length) throw new Error(`Got ${opts.seed.length} seeds for ${prompts.length} prompts; give one per prompt, or one number.`);
  }

  private checkLength(seqs: readonly (readonly number[])[], what: string): void {
    if (this.maxPositions === undefined) return;
    const i = seqs.findIndex((s) => s.length > this.maxPositions!);
    if (i >= 0) throw new Error(`The ${what} ${i} has ${seqs[i].length} tokens, more than the ${this.maxPositions} positions this model has; shorten it.`);
  }

  /** Appends a token to a row and decides whether the row is finished. */
  private accept(r: Row, token: number, opts: GenerateOptions, eos: ReadonlySet<number>): void {
    r.tokens.push(token);
    r.seen?.add(token);
    if (eos.has(token)) r.finish = 'eos';
    else if (r.tokens.length >= opts.maxNewTokens || (this.maxPositions !== undefined && r.prompt.length + r.tokens.length >= this.maxPositions)) r.finish = 'length';
    let textDelta: string | undefined;
    if (opts.decode && (opts.stopStrings?.length || opts.onToken)) {
      if (r.finish !== 'eos') this.updateText(r, opts);
      // Settled text: all of it once the row is finished, else all but what may still change.
      const settled = r.finish ? r.text.length : r.text.length - holdBack(r.text, opts.stopStrings);
      textDelta = settled > r.emitted ? r.text.slice(r.emitted, settled) : '';
      r.emitted = Math.max(r.emitted, settled);
    }
    opts.onToken?.({ row: r.index, tokenId: token, ...(opts.decode ? { textDelta } : {}) });
  }

  /** Re-decodes the generation and looks for stop strings in the part not searched yet. */
  private updateText(r: Row, opts: GenerateOptions): void {
    const full = opts.decode!(r.tokens);
    const stops = opts.stopStrings ?? [];
    let cut = -1, which: string | undefined;
    if (stops.length > 0) {
      const longest = Math.max(...stops.map((s) => s.length));
      const from = Math.max(0, Math.min(r.scanned, full.length) - longest + 1);
      for (const s of stops) {
        const at = full.indexOf(s, from);
        if (at >= 0 && (cut < 0 || at < cut)) {
          cut = at;
          which = s;
        }
      }
    }
    r.scanned = full.length;
    if (cut >= 0) {
      r.text = full.slice(0, cut);
      r.finish = 'stop';
      r.stopString = which;
    } else r.text = full;
  }

  private result(r: Row, opts: GenerateOptions, finish: FinishReason): GenerationResult {
    const res: GenerationResult = { tokens: [...r.tokens], finishReason: finish };
    if (opts.decode) {
      // The streamed text when it was kept up to date, else one decode now.
      res.text = opts.stopStrings?.length || opts.onToken ? r.text : opts.decode(r.finish === 'eos' ? r.tokens.slice(0, -1) : r.tokens);
    }
    if (r.stopString !== undefined) res.stopString = r.stopString;
    if (r.seed !== undefined) res.seed = r.seed;
    return res;
  }

  /**
   * One run of the step graph: `width` new tokens per row on the store's cache (empty for
   * a prefill), whose keys and values are appended to it (on the device: which the run
   * extends). Returns the logits [B * V].
   */
  private async runStep(graph: Compiled, store: KvStore | DeviceKvCache, tokens: BigInt64Array, positions: BigInt64Array, mask: BigInt64Array, width: number): Promise<Float32Array> {
    const B = store.batch;
    const feeds: Record<string, ort.Tensor> = {
      tokens: new ort.Tensor('int64', tokens, [B, width]),
      positions: new ort.Tensor('int64', positions, [B, width]),
      attention_mask: new ort.Tensor('int64', mask, [B, store.capacity + width]),
    };
    const past = store.past();
    for (let i = 0; i < this.layers; i++) {
      const n = cacheNames(i);
      feeds[n.pastKey] = past[2 * i];
      feeds[n.pastValue] = past[2 * i + 1];
    }
    const r = await this.run(graph, feeds);
    const entries: ort.Tensor[] = [];
    for (let i = 0; i < this.layers; i++) {
      const n = cacheNames(i);
      if (store instanceof DeviceKvCache) entries.push(r[n.presentKey], r[n.presentValue]);
      else entries.push(r[n.newKey], r[n.newValue]);
    }
    if (store instanceof DeviceKvCache) store.replace(entries);
    else store.append(entries);
    return r.logits.data as Float32Array;
  }
}

/** Per-row seeds: given ones, s + i from one number, or random ones. */
function rowSeeds(seed: number | readonly number[] | undefined, rows: number): number[] {
  if (Array.isArray(seed)) return [...seed];
  if (typeof seed === 'number') return Array.from({ length: rows }, (_, i) => seed + i);
  return Array.from({ length: rows }, () => randomInt(2 ** 31));
}

/**
 * Characters at the end of `text` that may still change: an incomplete UTF-8 character
 * (decoded as U+FFFD) and the longest tail that begins a stop string.
 */
export function holdBack(text: string, stops: readonly string[] = []): number {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0xfffd) end--;
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, end); k > hold; k--) {
      if (text.startsWith(s.slice(0, k), end - k)) {
        hold = k;
        break;
      }
    }
  }
  return text.length - end + hold;
}
