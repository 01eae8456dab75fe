// Builds the ONNX graphs of a training step.
//
// The whole step is ONE graph: inputs are the batch, the trainable parameters, the
// optimizer state, the step number and the learning rate; outputs are the loss, the
// metrics, the gradient norm and the updated parameters and state. Frozen parameters are
// initializers inside the graph and never cross the session boundary.
//
// With gradient accumulation over k micro-batches the step is split in two graphs:
// `accumulate` adds one micro-batch's gradients, times its weight, into running sums
// (graph inputs and outputs), and `apply` averages the sums and runs the optimizer.
//
// The graphs are written for one provider's kernels (ir/emit.ts EmitTarget) when first
// asked for: Trainer.create asks for its provider's, so the callers that build a step
// need not know where it will run.

import * as T from '../ir/index.ts';
import { clipByGlobalNorm, globalNorm } from '../optim/clip.ts';
import type { Optimizer } from '../optim/optimizer.ts';

export interface TrainStepSpec {
  /** Scalar loss built from batch inputs and parameters. */
  loss: T.Value;
  /** Extra scalar outputs (accuracy, token count...). */
  metrics?: Record<string, T.Value>;
  /** Parameter leaves that are trained. */
  trainable: readonly T.Value[];
  /**
   * Data of parameter leaves that stay fixed (frozen into the graph), or where a file holds
   * it (ONNX external data: give the trainer the folder, see TrainerOptions.externalData).
   */
  frozen?: ReadonlyMap<T.Value, T.HostArray | T.ExternalTensor>;
  optimizer: Optimizer;
  /** Global-norm clipping threshold (none when absent). */
  clipNorm?: number;
  /** Micro-batches per optimizer step (default 1: a single fused graph). */
  accumulation?: number;
}

/** Names used for the state tensors that go in and out of the step graphs. */
export const stateName = (param: string, slot: string): string => `${param}.${slot}`;
export const gradSumName = (param: string): string => `${param}.gradsum`;
export const nextName = (name: string): string => `${name}.next`;
/** The accumulate graph's scalar input: the micro-batch's weight (the trainer makes the k weights average 1). */
export const MICRO_WEIGHT = 'micro_batch_weight';

export interface StepModels {
  /** The fused step (accumulation 1), or the apply half. */
  step: T.EmittedModel;
  /** With accumulation > 1: the graph that adds one micro-batch's gradients. */
  accumulate?: T.EmittedModel;
}

export interface TrainStepGraphs {
  /**
   * The graphs written for `target`'s kernels (once per target); `step` and `accumulate`
   * are then these.
   */
  emit(target: T.EmitTarget): StepModels;
  /** The step graph as last written: for the CPU unless `emit` wrote it for another target. */
  readonly step: T.EmittedModel;
  /** The accumulate graph (accumulation > 1) as last written. */
  readonly accumulate?: T.EmittedModel;
  /** Batch input names, in graph order. */
  batchInputs: string[];
  params: { name: string; shape: number[]; dtype: T.DType }[];
  slots: readonly string[];
  metrics: string[];
  accumulation: number;
}

function paramName(p: T.Value): string {
  if (p.op.kind !== 'Param') throw new Error(`trainable values must be parameters, got ${p}`);
  return (p.attrs as { name: string }).name;
}

export function buildTrainStep(spec: TrainStepSpec): TrainStepGraphs {
  const { loss, trainable, optimizer } = spec;
  const k = spec.accumulation ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new Error(`accumulation must be a positive integer, got ${k}`);
  if (loss.rank !== 0) throw new Error(`the training loss must be a scalar, got ${loss}`);
  const frozen = spec.frozen ?? new Map<T.Value, T.HostArray | T.ExternalTensor>();
  const metrics = spec.metrics ?? {};
  const names = trainable.map(paramName);
  const grads = T.grad(loss, trainable);
  const batchInputs = T.topoSort([loss, ...Object.values(metrics)]).filter((v) => v.op.kind === 'Input');
  const batchNames = batchInputs.map((v) => (v.attrs as { name: string }).name);
  const step = T.input('step', 'float32', []);
  const lr = T.input('lr', 'float32', []);
  const states = trainable.map((p, i) => Object.fromEntries(optimizer.slots.map((s) => [s, T.input(stateName(names[i], s), p.dtype, p.shape)])));

  /** Optimizer update of every parameter from the given gradients. */
  function update(gs: T.Value[]): Record<string, T.Value> {
    const out: Record<string, T.Value> = {};
    let norm: T.Value;
    if (spec.clipNorm !== undefined) ({ grads: gs, norm } = clipByGlobalNorm(gs, spec.clipNorm));
    else norm = globalNorm(gs);
    out.grad_norm = norm;
    trainable.forEach((p, i) => {
      const r = optimizer.update({ param: p, grad: gs[i], state: states[i], step, lr });
      out[nextName(names[i])] = r.param;
      for (const s of optimizer.slots) out[nextName(stateName(names[i], s))] = r.state[s];
    });
    return out;
  }
  const stateInputs = states.flatMap((st) => optimizer.slots.map((s) => st[s]));
  const info = {
    batchInputs: batchNames,
    params: trainable.map((p, i) => ({ name: names[i], shape: p.shape as number[], dtype: p.dtype })),
    slots: optimizer.slots,
    metrics: Object.keys(metrics),
    accumulation: k,
  };

  let write: (target: T.EmitTarget) => StepModels;
  if (k === 1) {
    const outputs = { loss, ...metrics, ...update(grads) };
    write = (target) => ({ step: T.emitOnnx({ outputs, initializers: frozen, inputs: [...batchInputs, ...trainable, ...stateInputs, step, lr], name: 'train_step', target }) });
  } else {
    const sums = trainable.map((p, i) => T.input(gradSumName(names[i]), p.dtype, p.shape));
    const weight = T.input(MICRO_WEIGHT, 'float32', []);
    const accOutputs: Record<string, T.Value> = { loss, ...metrics };
    trainable.forEach((_, i) => (accOutputs[nextName(gradSumName(names[i]))] = T.add(sums[i], T.mul(grads[i], weight))));
    const mean = sums.map((s) => T.mul(s, 1 / k));
    const applyOutputs = update(mean);
    write = (target) => ({
      step: T.emitOnnx({ outputs: applyOutputs, inputs: [...trainable, ...stateInputs, ...sums, step, lr], name: 'apply', target }),
      accumulate: T.emitOnnx({ outputs: accOutputs, initializers: frozen, inputs: [...batchInputs, ...trainable, ...sums, weight], name: 'accumulate', target }),
    });
  }
  const written = new Map<T.EmitTarget, StepModels>();
  let last: StepModels | undefined;
  const emit = (target: T.EmitTarget): StepModels => {
    let models = written.get(target);
    if (!models) written.set(target, (models = write(target)));
    return (last = models);
  };
  return {
    emit,
    get step() {
      return (last ?? emit('cpu')).step;
    },
    get accumulate() {
      return (last ?? emit('cpu')).accumulate;
    },
    ...info,
  };
}
