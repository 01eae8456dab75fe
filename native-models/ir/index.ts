// The public face of the graph IR: build values with these functions, differentiate with
// `grad`, write ONNX with `emitOnnx`.

export * from './dtype.ts';
export * from './shape.ts';
export { Value, apply, defineOp, floatAttr, opError, topoSort, type OpDef, type Emitter, type EmitTarget } from './value.ts';
export * from './ops/leaf.ts';
export * from './ops/elementwise.ts';
export * from './ops/matmul.ts';
export * from './ops/reduce.ts';
export * from './ops/layout.ts';
export * from './ops/indexing.ts';
export * from './ops/nn.ts';
export * from './composites.ts';
export { grad, unbroadcast } from './autodiff.ts';
export { savedActivationBytes, valueBytes } from './memory.ts';
export { deviceDtype, emitOnnx, shapeInputValues, ONNX_IR_VERSION, ONNX_OPSET, type EmitOptions, type EmittedModel, type ExternalTensor, type ShapeInput } from './emit.ts';
