// What a graph written for the GPU (ir/emit.ts, target 'webgpu') takes besides its
// caller's feeds: its int64 inputs as int32 (the WebGPU provider has no int64 arithmetic,
// and converting a few token ids on the host is cheaper than a kernel that cannot run),
// and the run-time sizes its shapes need, computed from the feeds' dims (the graph has
// no Shape nodes, whose arithmetic ONNX Runtime would run on the CPU).

import ort from 'onnxruntime-node';
import { shapeInputValues, type EmittedModel } from '../ir/emit.ts';

export type Feeds = Record<string, ort.Tensor>;

/** What deviceFeeds needs of an emitted model (a session's owner keeps this, not the model's bytes). */
export type DeviceInputs = Pick<EmittedModel, 'int32Inputs' | 'shapeInputs' | 'symbols'>;

export const deviceInputsOf = (m: DeviceInputs): DeviceInputs => ({ int32Inputs: m.int32Inputs, shapeInputs: m.shapeInputs, symbols: m.symbols });

/** `feeds` completed for `model`: as they are for a CPU graph. */
export function deviceFeeds(model: DeviceInputs, feeds: Feeds): Feeds {
  if (model.int32Inputs.length === 0 && model.shapeInputs.length === 0) return feeds;
  const out: Feeds = { ...feeds };
  for (const name of model.int32Inputs) {
    const t = feeds[name];
    if (t?.type === 'int64') out[name] = new ort.Tensor('int32', toInt32(t.data as BigInt64Array, name), t.dims);
  }
  for (const [name, v] of shapeInputValues(model, (input) => feeds[input]?.dims)) out[name] = new ort.Tensor(v.data, v.dims);
  return out;
}

function toInt32(data: BigInt64Array, name: string): Int32Array {
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const x = Number(data[i]);
    if (x !== (x | 0)) throw new Error(`The input '${name}' holds ${data[i]}, which the int32 the GPU graph takes it as cannot hold.`);
    out[i] = x;
  }
  return out;
}
