// Tiny ONNX models for the runtime tests, built directly with onnx-proto so that the
// runtime stays testable without the IR.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const F32 = onnx.TensorProto.DataType.FLOAT;

export type TinyValue = { name: string; dims: number[]; elemType?: number };

function valueInfo(v: TinyValue): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: { tensorType: { elemType: v.elemType ?? F32, shape: { dim: v.dims.map((d) => ({ dimValue: d })) } } },
  };
}

/** Encodes a single-graph model (IR 10, opset 21). */
export function tinyModel(g: {
  inputs: TinyValue[];
  outputs: TinyValue[];
  nodes: onnxProto.onnx.INodeProto[];
  initializers?: onnxProto.onnx.ITensorProto[];
}): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'tiny',
      node: g.nodes,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      initializer: g.initializers ?? [],
    },
  })).finish();
}

/** Y = A + B, all float32 of shape `dims`. */
export function addModel(dims: number[] = [2, 3]): Uint8Array {
  return tinyModel({
    inputs: [{ name: 'A', dims }, { name: 'B', dims }],
    outputs: [{ name: 'Y', dims }],
    nodes: [{ opType: 'Add', input: ['A', 'B'], output: ['Y'] }],
  });
}

/** S = A + B and P = A * B, float32 of shape `dims`: two outputs. */
export function sumProductModel(dims: number[] = [4]): Uint8Array {
  return tinyModel({
    inputs: [{ name: 'A', dims }, { name: 'B', dims }],
    outputs: [{ name: 'S', dims }, { name: 'P', dims }],
    nodes: [
      { opType: 'Add', input: ['A', 'B'], output: ['S'] },
      { opType: 'Mul', input: ['A', 'B'], output: ['P'] },
    ],
  });
}
