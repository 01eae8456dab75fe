// Element types of IR values and their ONNX TensorProto codes.

export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'bool';

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

export const isFloat = (d: DType): boolean => d === 'float32' || d === 'float64' || d === 'float16';

/** The typed array that holds a host copy of a tensor of this dtype. */
export type HostArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

export function hostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(length);
    case 'float64': return new Float64Array(length);
    case 'float16': return new Uint16Array(length);
    case 'int64': return new BigInt64Array(length);
    case 'int32': return new Int32Array(length);
    case 'bool': return new Uint8Array(length);
  }
}

export function dtypeOfArray(a: HostArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Uint16Array) return 'float16';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  return 'bool';
}
