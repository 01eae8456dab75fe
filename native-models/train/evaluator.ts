// Forward-only evaluation of a training loss with the trainer's current parameters (fed
// as inputs, so one compiled graph serves every evaluation of a run). On WebGPU the graph
// is written for its kernels and takes the trainer's state where it is, on the GPU.

import type ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { deviceFeeds, deviceInputsOf, type DeviceInputs } from '../runtime/device-feeds.ts';
import { SessionCache, type SessionOptions } from '../runtime/session.ts';
import type { Feeds } from './trainer.ts';

export class LossEvaluator {
  private constructor(private readonly session: ort.InferenceSession, private readonly inputs: DeviceInputs, private readonly sessions: SessionCache, private readonly paramNames: string[]) {}

  /** `loss` must be a scalar mean over the batch; `params` the parameter leaves it reads. */
  static async create(loss: T.Value, params: readonly T.Value[], opts: SessionOptions, sessions = new SessionCache()): Promise<LossEvaluator> {
    const device = opts.provider === 'webgpu';
    const model = T.emitOnnx({ outputs: { loss }, name: 'eval_loss', target: device ? 'webgpu' : 'cpu' });
    const names = params.map((p) => (p.attrs as { name: string }).name).filter((n) => model.inputNames.includes(n));
    const session = await sessions.get(model.bytes, { ...opts, ...(device ? { cpuFallback: false } : {}) });
    return new LossEvaluator(session, deviceInputsOf(model), sessions, names);
  }

  /** Mean loss over the batches, each weighted by its number of rows. */
  async mean(batches: Iterable<Feeds>, state: ReadonlyMap<string, ort.Tensor>): Promise<number> {
    const params: Feeds = {};
    for (const n of this.paramNames) {
      const t = state.get(n);
      if (!t) throw new Error(`the evaluator needs parameter ${n}, which the trainer does not have`);
      params[n] = t;
    }
    let sum = 0, rows = 0;
    for (const batch of batches) {
      const n = Object.values(batch)[0].dims[0];
      const out = await this.session.run(deviceFeeds(this.inputs, { ...batch, ...params }));
      sum += Number((out.loss.data as Float32Array)[0]) * n;
      rows += n;
    }
    if (rows === 0) throw new Error('no evaluation batches');
    return sum / rows;
  }

  async release(): Promise<void> {
    await this.sessions.release(this.session);
  }
}
