// The models view's methods (list with lineage, import, generate) and the streamed
// generations that compare shares: phases and tokens go out as events, finished responses
// are stored as generations so that blind A/B voting can use them. The models the
// generation worker keeps loaded are listed and emptied here too.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { GGUF_SOURCE_FILE } from '../../native-models/checkpoint/gguf/to-hf.ts';
import type { ModelFamily } from '../../native-models/models/family.ts';
import { familyOf, gpt2Family, llamaFamily } from '../../native-models/models/index.ts';
import { bestOfScores, GenerationStore } from '../../db/generations.ts';
import type { Model } from '../../db/models.ts';
import { ModelStore } from '../../db/models.ts';
import type { BestOf, GenerationStream, ModelCacheInfo, ModelInfo, SamplingSettings } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import type { GeneratedRow, ModelCacheState, WorkerPhase } from './generation.ts';
import { GenerationStopped } from './generation.ts';
import { runInfo } from './runs.ts';
import { DEFAULT_MODEL_DIR, ensureBuiltinModel, isBuiltinModel } from '../models/builtin.ts';
import { isSavedScorer } from '../stages/scorer-folder.ts';

/** A store model as the API shows it, with the folder of its files (which tells where a GGUF import came from). */
export function modelInfo(m: Model, folder: string | null = null): ModelInfo {
  return {
    id: m.id, name: m.name, kind: isBuiltinModel(m) ? 'builtin' : m.kind, family: m.family, parentId: m.parentId, stage: m.stage, runId: m.runId, createdAt: m.createdAt,
    params: paramCount(m) ?? (folder === null ? null : folderParamCount(folder)), source: folder === null ? null : ggufSource(folder), folder,
    reward: folder !== null && isSavedScorer(folder),
  };
}

/** The parameter count of a stored engine config (null for a model whose config the family cannot read). */
function paramCount(m: Model): number | null {
  const family = m.family === 'gpt2' ? gpt2Family : m.family === 'llama' ? llamaFamily : undefined;
  if (family === undefined || Object.keys(m.config).length === 0) return null;
  return countParams(family, m.config);
}

/** The parameter count from a model folder's config.json (trained models and the embedded one store no engine config). */
function folderParamCount(folder: string): number | null {
  try {
    const { family, config } = familyOf(JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>);
    return countParams(family, config);
  } catch {
    return null;
  }
}

function countParams(family: ModelFamily<unknown>, config: unknown): number | null {
  try {
    let n = 0;
    for (const shape of family.paramShapes(config as never).values()) n += shape.reduce((a, b) => a * b, 1);
    return Number.isSafeInteger(n) && n > 0 ? n : null; // a config that is not the family's gives NaN
  } catch {
    return null;
  }
}

/** What gguf-source.json in a model folder says, when the folder was converted from a GGUF. */
function ggufSource(folder: string): ModelInfo['source'] {
  try {
    const s = JSON.parse(readFileSync(join(folder, GGUF_SOURCE_FILE), 'utf8')) as { file?: unknown; quantization?: unknown };
    return typeof s.file === 'string' && typeof s.quantization === 'string' ? { format: 'gguf', file: s.file, quantization: s.quantization } : null;
  } catch {
    return null;
  }
}

/** Where the Hugging Face folder of store model `modelId` is; a sentence when it has none. */
export function modelFolder(ctx: ApiContext, models: ModelStore, modelId: number): string {
  const m = models.get(modelId);
  if (m === undefined) throw new Error(`There is no model #${modelId}; it may have been deleted, so reload the list.`);
  if (isBuiltinModel(m)) return DEFAULT_MODEL_DIR;
  if (m.path === null) throw new Error(`Model "${m.name}" (#${m.id}) has no weights on disk yet; wait for the run that trains it to finish.`);
  return isAbsolute(m.path) ? m.path : ctx.runner.files.absolute(m.path);
}

/** Where a column's streams sit in a comparison, and the Best-of-N it runs (null: plain answers). */
export interface StreamColumn {
  column: number;
  bestOf: BestOf | null;
}

/** Streams of generation: each (model, prompt) is one stream with its own id; a
 *  comparison's Best-of-N column is one stream per prompt too. */
export class GenerationStreams {
  private readonly ctx: ApiContext;
  private readonly models: ModelStore;
  private readonly generations: GenerationStore;
  private readonly aborts = new Map<string, AbortController>();
  /** Streams started and not finished. */
  private readonly unfinished = new Set<string>();

  constructor(ctx: ApiContext) {
    this.ctx = ctx;
    this.models = new ModelStore(ctx.db);
    this.generations = new GenerationStore(ctx.db);
  }

  /** Where a model's Hugging Face folder is. */
  modelDir(modelId: number): string {
    return modelFolder(this.ctx, this.models, modelId);
  }

  /** Where the saved scorer of reward model `modelId` is; a sentence when the model is not a reward model. */
  rewardModelDir(modelId: number): string {
    const dir = this.modelDir(modelId);
    if (!isSavedScorer(dir)) {
      const name = this.models.get(modelId)?.name ?? 'model';
      throw new Error(`Model "${name}" (#${modelId}) is not a reward model (its folder holds no saved scorer), so it cannot choose a Best-of-N answer; choose a model that a reward, pref-reward or judge stage made.`);
    }
    return dir;
  }

  /** How many streams are unfinished (waiting ones included): the status bar's count. */
  running(): number {
    return this.unfinished.size;
  }

  /**
   * Starts one model on several prompts (one batch in the worker); returns at once. Each
   * stream is 'queued' until the worker takes the batch (at once, unless another model is
   * loading), then its phases follow. With `bestOf` each prompt's answer is the reward
   * model's pick of N sampled ones: no tokens stream, the phases say how far it is.
   */
  start(modelId: number, prompts: readonly string[], sampling: SamplingSettings = {}, where: StreamColumn = { column: 0, bestOf: null }): GenerationStream[] {
    const modelDir = this.modelDir(modelId);
    const bestOf = where.bestOf === null ? undefined : { n: where.bestOf.n, rewardDir: this.rewardModelDir(where.bestOf.rewardModelId) };
    const streams = prompts.map((prompt, promptIndex) => ({ streamId: randomUUID(), modelId, column: where.column, bestOf: where.bestOf, promptIndex, prompt }));
    const abort = new AbortController();
    for (const s of streams) {
      this.aborts.set(s.streamId, abort);
      this.unfinished.add(s.streamId);
      this.ctx.emit({ type: 'generation.phase', streamId: s.streamId, phase: 'queued', done: 0, total: null, etaMs: null });
    }
    const texts = streams.map(() => '');
    const on = {
      token: (row: number, index: number, text: string): void => {
        texts[row] += text;
        this.ctx.emit({ type: 'generation.token', streamId: streams[row].streamId, index, text });
      },
      phase: ({ prompt, ...p }: WorkerPhase): void => {
        for (const s of prompt === undefined ? streams : [streams[prompt]]) this.ctx.emit({ type: 'generation.phase', streamId: s.streamId, ...p });
      },
    };
    const { forcedProvider: provider, modelCacheBytes: cacheBytes } = this.ctx.settings.get();
    void this.ctx.generation.generate({ modelDir, prompts: [...prompts], sampling, provider, cacheBytes, ...(bestOf === undefined ? {} : { bestOf }) }, on, abort.signal)
      .then((rows) => this.finish(modelId, streams, rows, null))
      .catch((err: Error) => {
        if (err instanceof GenerationStopped) this.finish(modelId, streams, streams.map((_, i) => err.partial[i] ?? { text: texts[i], tokens: 0, finishReason: 'cancelled' }), null);
        else this.finish(modelId, streams, streams.map((_, i) => ({ text: texts[i], tokens: 0, finishReason: 'cancelled' })), err);
      });
    return streams;
  }

  /** Stops the batch the stream belongs to; false if it has already ended. */
  cancel(streamId: string): boolean {
    const abort = this.aborts.get(streamId);
    if (abort === undefined) return false;
    abort.abort();
    return true;
  }

  cancelAll(): void {
    for (const a of this.aborts.values()) a.abort();
  }

  /** The loaded models with the store's names, from the worker's state. */
  cacheInfo(state: ModelCacheState): ModelCacheInfo {
    const byFolder = new Map<string, { id: number; name: string }>();
    for (const m of this.models.list()) {
      try {
        byFolder.set(this.modelDir(m.id), { id: m.id, name: m.name });
      } catch {
        // a model still being trained has no folder yet
      }
    }
    return {
      budgetBytes: state.budgetBytes, usedBytes: state.usedBytes,
      models: state.models.map((l) => {
        const m = byFolder.get(l.dir);
        return { modelId: m?.id ?? null, name: m?.name ?? basename(l.dir), provider: l.runsOn ?? l.provider, bytes: l.bytes, estimated: l.estimated, loadMs: Math.round(l.loadMs), lastUsedAt: new Date(l.lastUsedAt).toISOString(), inUse: l.users > 0 };
      }),
    };
  }

  private finish(modelId: number, streams: GenerationStream[], rows: GeneratedRow[], error: Error | null): void {
    for (const s of streams) {
      this.aborts.delete(s.streamId);
      this.unfinished.delete(s.streamId);
    }
    let ids: (number | null)[] = streams.map(() => null);
    if (error === null) {
      // Complete responses only: a stopped one would bias a vote against its model (and a
      // Best-of-N column's answer without its candidates would pass for a plain one).
      const keep = streams.map((s, i) => ({ s, r: rows[i] })).filter(({ s, r }) => r.finishReason !== 'cancelled' && (s.bestOf === null || r.bestOf !== undefined));
      try {
        // A Best-of-N pick is labelled by its scores (db/generations.ts bestOfScores), which keep it apart from the model's plain answers in blind votes.
        const stored = this.generations.insertMany(keep.map(({ s, r }) => ({
          modelId, prompt: s.prompt, text: r.text, tokenCount: r.tokens,
          ...(s.bestOf !== null && r.bestOf !== undefined ? { sampleIndex: r.bestOf.chosen, scores: bestOfScores(s.bestOf, r.bestOf.candidates[r.bestOf.chosen].reward) } : {}),
        })));
        ids = streams.map((s) => {
          const k = keep.findIndex((x) => x.s === s);
          return k < 0 ? null : stored[k];
        });
      } catch (err) {
        this.ctx.log('error', `Could not store the responses of model #${modelId}: ${(err as Error).message}`);
      }
    } else {
      this.ctx.log('error', `Generation with model #${modelId} failed: ${error.message}`);
    }
    streams.forEach((s, i) => {
      const r = rows[i];
      this.ctx.emit({
        type: 'generation.done', streamId: s.streamId, text: r.text, tokens: r.tokens,
        finishReason: error === null ? r.finishReason : 'error', error: error === null ? null : error.message, generationId: ids[i],
        ...(s.bestOf !== null && r.bestOf !== undefined ? { bestOf: { ...s.bestOf, ...r.bestOf } } : {}),
      });
    });
  }
}

export function modelHandlers(ctx: ApiContext, streams: GenerationStreams): Handlers<'models.list' | 'models.import' | 'models.export' | 'models.generate' | 'generation.cancel' | 'generation.cache' | 'generation.unload'> {
  const models = new ModelStore(ctx.db);
  const folderOf = (m: Model): string | null => (isBuiltinModel(m) ? DEFAULT_MODEL_DIR : m.path === null ? null : isAbsolute(m.path) ? m.path : ctx.runner.files.absolute(m.path));
  return {
    'models.list': () => {
      // Registered where models are listed, not when the service opens: a command that
      // only reads runs leaves the store's model ids as they were.
      ensureBuiltinModel(ctx.db);
      return models.list().map((m) => modelInfo(m, folderOf(m)));
    },
    'models.import': (p) => {
      if (!isAbsolute(p.dir)) throw new Error(`"${p.dir}" is not an absolute path; choose the model's folder or .gguf file with the picker.`);
      const run = ctx.runner.submit('import-model', p.name === undefined ? { dir: p.dir } : { dir: p.dir, name: p.name });
      ctx.log('info', `Importing the model ${p.dir} (run #${run.id}).`);
      return runInfo(run);
    },
    'models.export': (p) => {
      if (!isAbsolute(p.out)) throw new Error(`"${p.out}" is not an absolute path; give the full path to write to.`);
      const dir = modelFolder(ctx, models, p.modelId);
      const name = models.get(p.modelId)?.name ?? 'model';
      const run = ctx.runner.submit('export-model', { dir, out: p.out, format: p.format, type: p.type ?? (p.format === 'gguf' ? 'f16' : 'f32'), name });
      ctx.log('info', `Exporting model "${name}" to ${p.out} (run #${run.id}).`);
      return runInfo(run);
    },
    'models.generate': (p) => streams.start(p.modelId, [p.prompt], p.sampling)[0],
    'generation.cancel': (p) => ({ cancelled: streams.cancel(p.streamId) }),
    'generation.cache': async () => streams.cacheInfo(await ctx.generation.cache(ctx.settings.get().modelCacheBytes)),
    'generation.unload': async () => {
      const before = await ctx.generation.cache(ctx.settings.get().modelCacheBytes);
      const after = await ctx.generation.unload(ctx.settings.get().modelCacheBytes);
      if (before.models.length > 0) ctx.log('info', `Released ${before.models.length} loaded model${before.models.length === 1 ? '' : 's'} (${(before.usedBytes / 1e9).toFixed(1)} GB).`);
      return streams.cacheInfo(after);
    },
  };
}
