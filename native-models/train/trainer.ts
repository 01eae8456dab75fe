// Runs training-step graphs on ONNX Runtime and owns the training state between steps.
//
// The state (parameters, optimizer slots, step count, data RNG) lives in ORT tensors; the
// outputs of one step are fed unchanged as the inputs of the next. (Pre-allocated outputs
// do not help here: onnxruntime-node 1.30 still returns a fresh copy of each output, so
// they only add a third copy of the state.) A step whose loss or gradient norm is not
// finite is refused and leaves the state as it was.
//
// On WebGPU the graphs are written for its kernels (step.ts emit, ir/emit.ts) and the
// state stays in the GPU's memory: the parameters, optimizer slots and gradient sums are
// outputs the session keeps on the device and the next step takes as they are; only the
// loss, metrics and gradient norm come to the host each step. The initial (or loaded)
// state goes up once, with the first step. Reading parameters and saving copy the state
// back explicitly (runtime/read-back.ts).

import ort from 'onnxruntime-node';
import { gradSumName, MICRO_WEIGHT, nextName, stateName, type StepModels, type TrainStepGraphs } from './step.ts';
import { Rng } from './rng.ts';
import { deviceFeeds, deviceInputsOf, type DeviceInputs } from '../runtime/device-feeds.ts';
import { ReadBack } from '../runtime/read-back.ts';
import { SessionCache, type SessionOptions } from '../runtime/session.ts';
import { readSafetensors, tensorOf, writeSafetensors, type NamedTensor } from '../runtime/safetensors.ts';
import { releaseBuffers } from '../runtime/release.ts';
import onnxProto from 'onnx-proto';

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
const onDevice = (t: ort.Tensor): boolean => t.location !== 'cpu';
const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The sessions of one provider's step graphs, and what their feeds need (device-feeds.ts). */
interface StepSessions {
  step: ort.InferenceSession;
  stepInputs: DeviceInputs;
  accumulate?: ort.InferenceSession;
  accumulateInputs?: DeviceInputs;
}

export class Trainer {
  /**
   * Parameters and optimizer state by name (param, param.m, ...). With `stateOnDevice`
   * they are in the GPU's memory: feed them to sessions, read them with parameters().
   */
  state = new Map<string, ort.Tensor>();
  /** Number of optimizer steps taken. */
  stepCount = 0;
  rng: Rng;
  /** State tensors this trainer made (run outputs, loaded state), whose memory it frees once replaced. */
  readonly #owned = new WeakSet<ort.Tensor>();
  /** Copies device state to the host (WebGPU only). */
  readonly #readBack?: ReadBack;
  /** Zero gradient sums in the device's memory, the first micro-batch's input (WebGPU with accumulation), and the session that made them. */
  #deviceZeros?: Feeds;
  #zerosSession?: ort.InferenceSession;

  private constructor(
    readonly graphs: TrainStepGraphs,
    private readonly sessions: SessionCache,
    private readonly run: StepSessions,
    readonly provider: string,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    if (provider === 'webgpu') this.#readBack = new ReadBack('webgpu');
  }

  /** Whether the state stays in the GPU's memory between steps (WebGPU). */
  get stateOnDevice(): boolean {
    return this.#readBack !== undefined;
  }

  static async create(graphs: TrainStepGraphs, init: ReadonlyMap<string, Float32Array>, opts: TrainerOptions = {}): Promise<Trainer> {
    const provider = opts.provider ?? 'cpu';
    const sessions = opts.sessions ?? new SessionCache();
    const sessionOpts: SessionOptions = {
      provider, intraOpThreads: opts.threads, memoryArena: opts.memoryArena,
      ...(opts.externalData ? { externalDataDir: opts.externalData.dir, externalDataIdentity: opts.externalData.identity } : {}),
    };
    const models = graphs.emit(provider === 'webgpu' ? 'webgpu' : 'cpu');
    const t = new Trainer(graphs, sessions, await stepSessions(models, sessions, sessionOpts), provider, opts.seed ?? 0);
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

  /** Gradient sums of zero, for the first micro-batch: on the device, made there once and reused (inputs are never written). */
  private async zeroSums(): Promise<Feeds> {
    if (this.#deviceZeros) return this.#deviceZeros;
    const sums: Feeds = {};
    for (const p of this.graphs.params) sums[gradSumName(p.name)] = new ort.Tensor('float32', new Float32Array(size(p.shape)), p.shape);
    if (!this.stateOnDevice) return sums;
    // Kept with its outputs: a session's device tensors must be disposed before it is released.
    this.#zerosSession = await this.sessions.get(zerosModel(this.graphs.params.map((p) => [gradSumName(p.name), p.shape])), {
      provider: this.provider as 'webgpu', cpuFallback: false, deviceOutputs: Object.keys(sums),
    });
    this.#deviceZeros = await this.#zerosSession.run({});
    return this.#deviceZeros;
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
    const { accumulate } = this.run;
    let sums: Feeds | undefined;
    // Gradient sums are freed once used, but for the device's zeros, which every step reuses.
    const free = (f: Feeds | undefined): void => {
      if (f && f !== this.#deviceZeros) freeTensors(Object.values(f));
    };
    if (accumulate) {
      sums = await this.zeroSums();
      try {
        for (const [i, mb] of batches.entries()) {
          const out = await accumulate.run(deviceFeeds(this.run.accumulateInputs!, { ...this.batchFeeds(mb), ...this.paramFeeds(), ...sums, [MICRO_WEIGHT]: scalar(scaled[i]) }));
          loss += (scaled[i] * num(out.loss)) / k;
          for (const m of this.graphs.metrics) metrics[m] = (metrics[m] ?? 0) + (scaled[i] * num(out[m])) / k;
          const previous = sums;
          sums = {};
          for (const p of this.graphs.params) sums[gradSumName(p.name)] = out[nextName(gradSumName(p.name))];
          free(previous);
        }
        if (!Number.isFinite(loss)) throw new TrainingDivergedError(t, 'loss');
      } catch (e) {
        free(sums);
        throw e;
      }
      Object.assign(feeds, sums);
    } else {
      Object.assign(feeds, this.batchFeeds(batches[0]));
    }
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await this.run.step.run(deviceFeeds(this.run.stepInputs, feeds));
    } finally {
      free(sums);
    }
    if (!accumulate) {
      loss = num(out.loss);
      for (const m of this.graphs.metrics) metrics[m] = num(out[m]);
    }
    const gradNorm = num(out.grad_norm);
    const next = new Map([...this.state.keys()].map((name) => [name, out[nextName(name)]]));
    const refused = !Number.isFinite(loss) ? 'loss' : !Number.isFinite(gradNorm) ? 'gradient norm' : undefined;
    if (refused) {
      freeTensors([...next.values()].filter(onDevice)); // host outputs are garbage like any other
      throw new TrainingDivergedError(t, refused);
    }
    this.#replaceState(next);
    this.stepCount = t;
    return { step: t, loss, gradNorm, metrics };
  }

  /** A host copy of the current parameters (read back from the device when the state is there). */
  parameters(): Map<string, Float32Array> {
    const host = this.#host(this.graphs.params.map((p) => p.name));
    const out = new Map<string, Float32Array>();
    for (const p of this.graphs.params) {
      const data = host[p.name].data as Float32Array;
      // A read-back is a copy of its own; a host state tensor is the trainer's, and is copied.
      out.set(p.name, onDevice(this.state.get(p.name)!) ? data : Float32Array.from(data));
    }
    return out;
  }

  /** The named state tensors on the host: read back from the device, or as they are. */
  #host(names: readonly string[]): Record<string, ort.Tensor> {
    if (names.some((n) => !this.state.has(n))) throw new Error('This trainer was released: its state on the GPU is gone.');
    const tensors = Object.fromEntries(names.map((n) => [n, this.state.get(n)!]));
    return this.#readBack ? this.#readBack.read(tensors) : tensors;
  }

  /**
   * Saves parameters, optimizer state, step count and RNG state as one safetensors file,
   * written atomically: a crash mid-save leaves the previous file as it was.
   */
  async save(path: string): Promise<void> {
    const tensors = new Map<string, NamedTensor>();
    const host = this.#host([...this.state.keys()]);
    for (const [name, t] of Object.entries(host)) tensors.set(name, tensorOf('F32', [...t.dims], t.data as Float32Array));
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
    freeTensors(replaced);
  }

  /**
   * Releases the sessions; state kept on the device is freed first (a session's device
   * tensors must not outlive it), so the trainer cannot step or read its state afterwards.
   */
  async release(): Promise<void> {
    if (this.#readBack) {
      freeTensors([...this.state.values()].filter(onDevice));
      this.state.clear();
      freeTensors(Object.values(this.#deviceZeros ?? {}));
      this.#deviceZeros = undefined;
      if (this.#zerosSession) await this.sessions.release(this.#zerosSession);
      this.#readBack.release();
    }
    await this.sessions.release(this.run.step);
    if (this.run.accumulate) await this.sessions.release(this.run.accumulate);
  }
}

/** Frees tensors now: device memory by disposing, host buffers by detaching them (release.ts). */
function freeTensors(tensors: readonly ort.Tensor[]): void {
  for (const t of tensors) if (onDevice(t)) t.dispose();
  releaseBuffers(tensors.filter((t) => !onDevice(t)).map((t) => t.data as Float32Array));
}

/** The step sessions for `models`; on WebGPU wholly on the GPU, with the state outputs kept there. */
async function stepSessions(models: StepModels, sessions: SessionCache, opts: SessionOptions): Promise<StepSessions> {
  const device = models.step.target === 'webgpu';
  const stateOutputs = (m: { outputNames: string[] }): string[] => (device ? m.outputNames.filter((n) => n.endsWith('.next')) : []);
  const get = (m: { bytes: Uint8Array; outputNames: string[] }): Promise<ort.InferenceSession> => sessions.get(m.bytes, { ...opts, cpuFallback: !device, deviceOutputs: stateOutputs(m) });
  return {
    step: await get(models.step),
    stepInputs: deviceInputsOf(models.step),
    ...(models.accumulate ? { accumulate: await get(models.accumulate), accumulateInputs: deviceInputsOf(models.accumulate) } : {}),
  };
}

/** A graph whose outputs are float32 zeros of the given shapes (Expand of a scalar). */
function zerosModel(tensors: readonly (readonly [string, readonly number[]])[]): Uint8Array {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT, INT64 = onnx.TensorProto.DataType.INT64;
  const initializer: onnxProto.onnx.ITensorProto[] = [{ name: 'zero', dims: [], dataType: FLOAT, rawData: new Uint8Array(4) }];
  tensors.forEach(([, shape], i) => initializer.push({ name: `shape${i}`, dims: [shape.length], dataType: INT64, rawData: new Uint8Array(BigInt64Array.from(shape, (d) => BigInt(d)).buffer) }));
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'zeros',
      initializer,
      output: tensors.map(([name, shape]) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } })),
      node: tensors.map(([name], i) => ({ opType: 'Expand', input: ['zero', `shape${i}`], output: [name] })),
    },
  })).finish();
}
