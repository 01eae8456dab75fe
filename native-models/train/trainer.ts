// Runs training-step graphs on ONNX Runtime and owns the training state between steps.
//
// The state (parameters, optimizer slots, step count, data RNG) lives in ORT tensors; the
// outputs of one step are fed unchanged as the inputs of the next. (Pre-allocated outputs
// do not help here: onnxruntime-node 1.30 still returns a fresh copy of each output, so
// they only add a third copy of the state.) A step whose loss or gradient norm is not
// finite is refused and leaves the state as it was.

import ort from 'onnxruntime-node';
import { gradSumName, MICRO_WEIGHT, nextName, stateName, type TrainStepGraphs } from './step.ts';
import { Rng } from './rng.ts';
import { SessionCache, type SessionOptions } from '../runtime/session.ts';
import { readSafetensors, tensorOf, writeSafetensors, type NamedTensor } from '../runtime/safetensors.ts';
import { releaseBuffers } from '../runtime/release.ts';

/** Version of the training-state file layout (safetensors metadata `afd.format`). */
const STATE_FORMAT = 'afd-train-state-1';

export type Feeds = Record<string, ort.Tensor>;

export interface TrainerOptions {
  /** Execution provider (choose it with runtime/providers.ts; default 'cpu'). */
  provider?: 'cpu' | 'webgpu' | 'cuda';
  /** Intra-op threads (default: ORT's choice, one per core). */
  threads?: number;
  /** Seed of the data RNG. */
  seed?: number;
  /** Keep ORT's CPU memory arena (default true: ~10% faster steps; false: less memory held between steps). */
  memoryArena?: boolean;
  /** Where compiled sessions come from (default: a cache of the trainer's own). */
  sessions?: SessionCache;
  /**
   * The folder that the graphs' external frozen weights are relative to, and what
   * identifies its files (MappedWeights' dir and identity): ONNX Runtime maps them.
   */
  externalData?: { dir: string; identity: string };
}

export interface StepResult {
  step: number;
  loss: number;
  gradNorm: number;
  metrics: Record<string, number>;
}

export class TrainingDivergedError extends Error {
  constructor(readonly step: number, what: string) {
    super(`training stopped at step ${step}: the ${what} is not a finite number. The last good state is kept; lower the learning rate or enable gradient clipping, then resume.`);
    this.name = 'TrainingDivergedError';
  }
}

const scalar = (x: number): ort.Tensor => new ort.Tensor('float32', Float32Array.of(x), []);
const num = (t: ort.Tensor): number => Number((t.data as Float32Array)[0]);

export class Trainer {
  /** Parameters and optimizer state by name (param, param.m, ...). */
  state = new Map<string, ort.Tensor>();
  /** Number of optimizer steps taken. */
  stepCount = 0;
  rng: Rng;
  /** State tensors this trainer made (run outputs, loaded state), whose memory it frees once replaced. */
  readonly #owned = new WeakSet<ort.Tensor>();

  private constructor(
    readonly graphs: TrainStepGraphs,
    private readonly sessions: SessionCache,
    private readonly stepSession: ort.InferenceSession,
    private readonly accSession: ort.InferenceSession | undefined,
    readonly provider: string,
    seed: number,
  ) {
    this.rng = new Rng(seed);
  }

  static async create(graphs: TrainStepGraphs, init: ReadonlyMap<string, Float32Array>, opts: TrainerOptions = {}): Promise<Trainer> {
    const provider = opts.provider ?? 'cpu';
    const sessions = opts.sessions ?? new SessionCache();
    const sessionOpts: SessionOptions = {
      provider, intraOpThreads: opts.threads, memoryArena: opts.memoryArena,
      ...(opts.externalData ? { externalDataDir: opts.externalData.dir, externalDataIdentity: opts.externalData.identity } : {}),
    };
    const stepSession = await sessions.get(graphs.step.bytes, sessionOpts);
    const accSession = graphs.accumulate ? await sessions.get(graphs.accumulate.bytes, sessionOpts) : undefined;
    const t = new Trainer(graphs, sessions, stepSession, accSession, provider, opts.seed ?? 0);
    for (const p of graphs.params) {
      const data = init.get(p.name);
      const n = p.shape.reduce((a, b) => a * b, 1);
      if (!data) throw new Error(`no initial value for parameter ${p.name}`);
      if (data.length !== n) throw new Error(`initial value of ${p.name} has ${data.length} elements, the parameter [${p.shape}] has ${n}`);
      // The initial arrays are used as they are, not copied: a step never writes its inputs
      // (it returns new state), and a 30M-parameter model's copy was 113 MiB of garbage still
      // resident at the first steps' peak.
      t.state.set(p.name, new ort.Tensor('float32', data, p.shape));
      for (const s of graphs.slots) {
        const zeros = new ort.Tensor('float32', new Float32Array(n), p.shape);
        t.state.set(stateName(p.name, s), zeros);
        t.#owned.add(zeros);
      }
    }
    return t;
  }

  private paramFeeds(): Feeds {
    const f: Feeds = {};
    for (const p of this.graphs.params) f[p.name] = this.state.get(p.name)!;
    return f;
  }

  /** The graph's batch inputs out of `batch` (which may carry more, e.g. a batch built for several objectives). */
  private batchFeeds(batch: Feeds): Feeds {
    const out: Feeds = {};
    for (const name of this.graphs.batchInputs) {
      const t = batch[name];
      if (t === undefined) throw new Error(`the batch has no input '${name}' (it has ${Object.keys(batch).join(', ')})`);
      out[name] = t;
    }
    return out;
  }

  /**
   * One optimizer step at learning rate `lr`: one batch, or (with accumulation k) an
   * array of k micro-batches whose gradients are averaged, in proportion to `weights`
   * when given. For a loss that is a mean over terms (the response tokens of SFT's
   * cross-entropy), weights = each micro-batch's count of terms make the step and its
   * loss those of the whole batch (metrics are weighted the same way); equal weights
   * average the micro-batches' means, which differs whenever their counts do.
   */
  async step(batch: Feeds | Feeds[], lr: number, weights?: readonly number[]): Promise<StepResult> {
    const batches = Array.isArray(batch) ? batch : [batch];
    const k = this.graphs.accumulation;
    if (batches.length !== k) throw new Error(`this trainer accumulates ${k} micro-batch(es) per step; got ${batches.length}`);
    if (weights !== undefined && (weights.length !== k || !weights.every((w) => w > 0 && Number.isFinite(w)))) {
      throw new Error(`the micro-batch weights must be ${k} positive numbers, got [${weights.join(', ')}]`);
    }
    const total = weights?.reduce((a, b) => a + b, 0);
    // Scaled to average 1, so that apply's mean over k stays the same graph.
    const scaled = batches.map((_, i) => (weights === undefined ? 1 : (k * weights[i]) / total!));
    const t = this.stepCount + 1;
    const feeds: Feeds = { ...this.paramFeeds(), step: scalar(t), lr: scalar(lr) };
    for (const [name, tensor] of this.state) if (!(name in feeds)) feeds[name] = tensor;

    let loss = 0;
    const metrics: Record<string, number> = {};
    if (this.accSession) {
      const sums: Feeds = {};
      for (const p of this.graphs.params) sums[gradSumName(p.name)] = new ort.Tensor('float32', new Float32Array(p.shape.reduce((a, b) => a * b, 1)), p.shape);
      for (const [i, mb] of batches.entries()) {
        const out = await this.accSession.run({ ...this.batchFeeds(mb), ...this.paramFeeds(), ...sums, [MICRO_WEIGHT]: scalar(scaled[i]) });
        loss += (scaled[i] * num(out.loss)) / k;
        for (const m of this.graphs.metrics) metrics[m] = (metrics[m] ?? 0) + (scaled[i] * num(out[m])) / k;
        const previous = Object.values(sums);
        for (const p of this.graphs.params) sums[gradSumName(p.name)] = out[nextName(gradSumName(p.name))];
        releaseBuffers(previous.map((x) => x.data as Float32Array));
      }
      if (!Number.isFinite(loss)) throw new TrainingDivergedError(t, 'loss');
      Object.assign(feeds, sums);
    } else {
      Object.assign(feeds, this.batchFeeds(batches[0]));
    }
    const out = await this.stepSession.run(feeds);
    if (!this.accSession) {
      loss = num(out.loss);
      for (const m of this.graphs.metrics) metrics[m] = num(out[m]);
    }
    const gradNorm = num(out.grad_norm);
    if (!Number.isFinite(loss)) throw new TrainingDivergedError(t, 'loss');
    if (!Number.isFinite(gradNorm)) throw new TrainingDivergedError(t, 'gradient norm');
    this.#replaceState(new Map([...this.state.keys()].map((name) => [name, out[nextName(name)]])));
    if (this.accSession) releaseBuffers(this.graphs.params.map((p) => feeds[gradSumName(p.name)].data as Float32Array));
    this.stepCount = t;
    return { step: t, loss, gradNorm, metrics };
  }

  /** A host copy of the current parameters. */
  parameters(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.graphs.params) out.set(p.name, Float32Array.from(this.state.get(p.name)!.data as Float32Array));
    return out;
  }

  /**
   * Saves parameters, optimizer state, step count and RNG state as one safetensors file,
   * written atomically: a crash mid-save leaves the previous file as it was.
   */
  async save(path: string): Promise<void> {
    const tensors = new Map<string, NamedTensor>();
    for (const [name, t] of this.state) tensors.set(name, tensorOf('F32', [...t.dims], t.data as Float32Array));
    await writeSafetensors(path, tensors, {
      'afd.format': STATE_FORMAT,
      'afd.step': String(this.stepCount),
      'afd.rng': JSON.stringify(this.rng.getState()),
      'afd.optimizer.slots': JSON.stringify(this.graphs.slots),
    });
  }

  /** Restores a state written by `save` for the same model and optimizer. */
  async load(path: string): Promise<void> {
    const { tensors, metadata } = await readSafetensors(path);
    if (metadata['afd.format'] !== STATE_FORMAT) throw new Error(`${path} is not an AfD Studio training state (format ${metadata['afd.format'] ?? 'missing'})`);
    const next = new Map<string, ort.Tensor>();
    for (const [name, cur] of this.state) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${path} has no tensor ${name}; it was saved from a different model or optimizer`);
      if (t.dtype !== 'F32' || t.shape.length !== cur.dims.length || t.shape.some((d, i) => d !== cur.dims[i])) {
        throw new Error(`${path}: tensor ${name} is ${t.dtype}[${t.shape}], expected F32[${cur.dims}]`);
      }
      const data = new Float32Array(cur.size);
      new Uint8Array(data.buffer).set(t.data);
      next.set(name, new ort.Tensor('float32', data, cur.dims));
    }
    const extra = [...tensors.keys()].filter((n) => !this.state.has(n));
    if (extra.length > 0) throw new Error(`${path} has tensors this model does not: ${extra.slice(0, 5).join(', ')}`);
    this.#replaceState(next);
    this.stepCount = Number(metadata['afd.step']);
    this.rng = new Rng(JSON.parse(metadata['afd.rng']) as number[]);
  }

  /**
   * Makes `next` the state and frees the replaced tensors this trainer made. Tensors it was
   * given (the initial parameters) may be the caller's and are left alone; a replaced state
   * is garbage to the trainer, but V8 would free it only at its next collection, which on
   * the training benchmark was after the next step's peak.
   */
  #replaceState(next: Map<string, ort.Tensor>): void {
    const kept = new Set(next.values());
    const replaced = [...this.state.values()].filter((t) => this.#owned.has(t) && !kept.has(t));
    this.state = next;
    for (const t of next.values()) this.#owned.add(t);
    releaseBuffers(replaced.map((t) => t.data as Float32Array));
  }

  async release(): Promise<void> {
    await this.sessions.release(this.stepSession);
    if (this.accSession) await this.sessions.release(this.accSession);
  }
}
