// Copies tensors that live in the GPU's memory (outputs a session kept on the device,
// runtime/session.ts deviceOutputs) back to the host.
//
// onnxruntime-node 1.30 does not implement getData() for such tensors (calling it aborts
// the process), so the copy is a graph: one Identity node per tensor, whose outputs ONNX
// Runtime writes to host memory. It runs through onnxruntime-node's synchronous binding
// (the session object that ort.InferenceSession wraps in a setImmediate), because its
// callers read synchronously (Trainer.parameters()). One session per set of names,
// dtypes and shapes, kept until release().

import ort from 'onnxruntime-node';
import { binding, initOrt, type Binding } from 'onnxruntime-node/dist/binding.js';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

const ELEMENT_TYPE: Partial<Record<ort.Tensor.Type, number>> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int32: onnx.TensorProto.DataType.INT32,
};

const hostName = (name: string): string => `${name}:host`;

export class ReadBack {
  readonly #sessions = new Map<string, Binding.InferenceSession>();

  constructor(readonly provider: 'webgpu') {}

  /** Host copies of the device tensors in `tensors`, by name; host tensors are returned as they are. */
  read(tensors: Readonly<Record<string, ort.Tensor>>): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    const device = Object.entries(tensors).filter(([name, t]) => {
      if (t.location === 'cpu') out[name] = t;
      return t.location !== 'cpu';
    });
    if (device.length === 0) return out;
    const session = this.#session(device);
    const fetches = Object.fromEntries(device.map(([name]) => [hostName(name), null]));
    const r = session.run(Object.fromEntries(device), fetches, {});
    for (const [name] of device) out[name] = r[hostName(name)] as ort.Tensor;
    return out;
  }

  #session(tensors: readonly (readonly [string, ort.Tensor])[]): Binding.InferenceSession {
    const key = tensors.map(([name, t]) => `${name}:${t.type}[${t.dims.join(',')}]`).join('|');
    let session = this.#sessions.get(key);
    if (!session) {
      const model = identityModel(tensors);
      initOrt();
      session = new binding.InferenceSession();
      session.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
        executionProviders: [this.provider],
        intraOpNumThreads: 1, // copies: no thread pool to start
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        extra: { session: { disable_cpu_ep_fallback: '1' } },
      });
      this.#sessions.set(key, session);
    }
    return session;
  }

  release(): void {
    for (const s of this.#sessions.values()) s.dispose();
    this.#sessions.clear();
  }
}

function identityModel(tensors: readonly (readonly [string, ort.Tensor])[]): Uint8Array {
  const info = (name: string, t: ort.Tensor): onnxProto.onnx.IValueInfoProto => {
    const elemType = ELEMENT_TYPE[t.type];
    if (elemType === undefined) throw new Error(`Reading ${t.type} tensors back from the GPU is not supported (${name}).`);
    return { name, type: { tensorType: { elemType, shape: { dim: t.dims.map((d) => ({ dimValue: d })) } } } };
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'read_back',
      input: tensors.map(([name, t]) => info(name, t)),
      output: tensors.map(([name, t]) => info(hostName(name), t)),
      node: tensors.map(([name]) => ({ opType: 'Identity', input: [name], output: [hostName(name)] })),
    },
  })).finish();
}
