// Writes IR values as one ONNX model (protobuf bytes, via onnx-proto's message types).
//
// Inputs and parameters become graph inputs, except parameters given data in
// `initializers`, which are frozen into the model and stay resident in the session:
// their bytes inside the model, or a reference to a file that holds them (ONNX external
// data, which ONNX Runtime maps instead of copying).
// Bytes are deterministic: values are visited in a fixed order, generated names come
// from a counter in that order (never from value ids, which depend on what else was
// built), and attributes are sorted by name, so golden tests can compare them.
//
// A graph is written for one provider's kernels (`target`). For 'cpu' symbolic sizes are
// read at run time with Shape nodes and combined with Concat, Mul and Add. ONNX Runtime
// places such shape arithmetic on the CPU under any other provider (its kernels take
// shapes in host memory), and the WebGPU provider has no int64 kernels but Gather,
// Scatter and Shape's, and no LogSoftmax. So for 'webgpu':
// - each symbolic shape or dimension the graph needs is a graph input (`shapeInputs`),
//   filled by the host from the other inputs' sizes (`shapeInputValues`): no Shape node,
//   no shape arithmetic;
// - int64 values are int32 on the device: the int64 inputs the IR declares are int32
//   inputs (`int32Inputs`; the host converts), int64 constants and casts are int32;
// - ops choose forms the provider has (nn.ts: log-softmax as x - max - log sum exp).
// Either way no node is left to the CPU provider: runtime/session.ts can forbid it.

import onnxProto from 'onnx-proto';
import { ONNX_DTYPE, type DType, type HostArray } from './dtype.ts';
import { valueBytes } from './memory.ts';
import { dimTerms, evalDim, isStatic, isSymbol, type Dim, type Shape } from './shape.ts';
import { FloatAttr, topoSort, type AttrValue, type EmitTarget, type Emitter, type Value } from './value.ts';

const { onnx } = onnxProto;

/** The ONNX versions this project writes; ORT 1.30 reads them. */
export const ONNX_IR_VERSION = 10;
export const ONNX_OPSET = 21;

/**
 * A frozen tensor whose bytes stay in a file: `length` bytes at `offset` of `location`, a
 * path relative to the folder ONNX Runtime resolves external data from (the model file's
 * folder, or runtime/session.ts's `externalDataDir` for a model given as bytes). The data
 * is little-endian and row-major, of the parameter's dtype and shape (a safetensors
 * file's tensors are).
 */
export interface ExternalTensor {
  location: string;
  offset: number;
  length: number;
}

export interface EmitOptions {
  /** Named results of the graph. */
  outputs: Record<string, Value>;
  /** Data for parameters that are frozen into the model as initializers, or where a file holds it. */
  initializers?: ReadonlyMap<Value, HostArray | ExternalTensor>;
  /** Order of the graph inputs (default: by creation order); must list every free leaf. */
  inputs?: readonly Value[];
  name?: string;
  /** Whose kernels the graph is written for (default 'cpu'; see the header). */
  target?: EmitTarget;
  /**
   * Store the frozen initializers of at least `minBytes` in a separate file named
   * `location` (relative to the model file), as ONNX external data: protobuf caps one
   * file at 2 GB. The caller writes `EmittedModel.externalData` to that file.
   */
  externalData?: { location: string; minBytes?: number };
}

/** A graph input that carries a run-time size: a shape (int64 [rank]) or one dimension (a scalar of `dtype`). */
export interface ShapeInput {
  name: string;
  dims: Dim[];
  /** Set for a dimension's scalar; absent for a shape. */
  dtype?: 'int32' | 'float32';
}

export interface EmittedModel {
  bytes: Uint8Array;
  /** The inputs the caller feeds (the IR's inputs, in order); `shapeInputs` come after them. */
  inputNames: string[];
  outputNames: string[];
  target: EmitTarget;
  /** webgpu: the inputs that carry run-time sizes, filled by shapeInputValues (none on the CPU). */
  shapeInputs: ShapeInput[];
  /** webgpu: the inputs the IR declares int64 that the graph takes as int32 (none on the CPU). */
  int32Inputs: string[];
  /** Where each symbolic size is read at run time: the graph input and its axis. */
  symbols: Record<string, { input: string; axis: number }>;
  /** With `externalData`: the chunks of the external data file, in order. */
  externalData?: Uint8Array[];
}

/**
 * The values of a model's shape inputs, from the sizes of the inputs that carry each
 * symbol (`dimsOf(input)`: the dims of what is fed as that input).
 */
export function shapeInputValues(model: Pick<EmittedModel, 'shapeInputs' | 'symbols'>, dimsOf: (input: string) => readonly number[] | undefined): Map<string, { dims: number[]; data: BigInt64Array | Int32Array | Float32Array }> {
  const sizes: Record<string, number> = {};
  for (const [sym, { input, axis }] of Object.entries(model.symbols)) {
    const dims = dimsOf(input);
    if (!dims) throw new Error(`The graph reads the size ${sym} from its input '${input}', which was not given.`);
    sizes[sym] = dims[axis];
  }
  const out = new Map<string, { dims: number[]; data: BigInt64Array | Int32Array | Float32Array }>();
  for (const s of model.shapeInputs) {
    const values = s.dims.map((d) => evalDim(d, sizes));
    if (s.dtype === undefined) out.set(s.name, { dims: [values.length], data: BigInt64Array.from(values, (x) => BigInt(x)) });
    else out.set(s.name, { dims: [], data: s.dtype === 'int32' ? Int32Array.of(values[0]) : Float32Array.of(values[0]) });
  }
  return out;
}

/** The dtype that holds `dtype` on the target: int64 values are int32 on webgpu. */
export const deviceDtype = (dtype: DType, target: EmitTarget): DType => (target === 'webgpu' && dtype === 'int64' ? 'int32' : dtype);

/** int64 data as int32, for the webgpu target; refuses values int32 cannot hold. */
function toInt32(data: BigInt64Array): Int32Array {
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const x = Number(data[i]);
    if (x !== (x | 0)) throw new Error(`emitOnnx: the int64 constant ${data[i]} does not fit the int32 that holds int64 values on webgpu.`);
    out[i] = x;
  }
  return out;
}

/** Offsets of external tensors are aligned so that ORT can map them in place. */
const EXTERNAL_ALIGN = 4096;

/** Lays tensors out in an external data file and points their protos at it. */
class ExternalData {
  readonly chunks: Uint8Array[] = [];
  private offset = 0;
  constructor(readonly location: string, readonly minBytes: number) {}

  /** Moves a tensor's bytes out of the proto when it is large enough. */
  place(t: TensorProto): void {
    const raw = t.rawData as Uint8Array | undefined; // absent when the tensor is external already
    if (!raw || raw.byteLength < this.minBytes || raw.byteLength === 0) return;
    const pad = (EXTERNAL_ALIGN - (this.offset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
    if (pad > 0) this.chunks.push(new Uint8Array(pad));
    this.offset += pad;
    t.rawData = undefined;
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: this.location },
      { key: 'offset', value: String(this.offset) },
      { key: 'length', value: String(raw.byteLength) },
    ];
    this.chunks.push(raw);
    this.offset += raw.byteLength;
  }
}

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

function toAttribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (v instanceof FloatAttr) return { name, type: T.FLOAT, f: v.value };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}=${v} is not an integer; wrap floats in floatAttr()`);
    return { name, type: T.INT, i: v };
  }
  if (v.every((x) => typeof x === 'string')) return { name, type: T.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
  return { name, type: T.INTS, ints: v as number[] };
}

function tensorProto(name: string, data: HostArray, dims: readonly number[], dtype: DType): TensorProto {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims: [...dims], dataType: ONNX_DTYPE[dtype], rawData: raw };
}

function externalProto(name: string, ext: ExternalTensor, v: Value): TensorProto {
  const bytes = valueBytes(v);
  if (ext.length !== bytes) throw new Error(`emitOnnx: the external data of '${name}' (${ext.location}) has ${ext.length} bytes, but its ${v.dtype} shape [${v.shape.join(', ')}] needs ${bytes}.`);
  return {
    name, dims: [...(v.shape as number[])], dataType: ONNX_DTYPE[v.dtype],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: ext.location },
      { key: 'offset', value: String(ext.offset) },
      { key: 'length', value: String(ext.length) },
    ],
  };
}

const isExternal = (data: HostArray | ExternalTensor): data is ExternalTensor => 'location' in data;

function dtypeOf(data: HostArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint16Array) return 'float16';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  return 'bool';
}

function valueInfo(name: string, dtype: DType, shape: Shape): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ONNX_DTYPE[dtype], shape: { dim: shape.map((d) => (isStatic(d) ? { dimValue: d } : { dimParam: String(d) })) } } },
  };
}

class OnnxWriter implements Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly shapeInputs: ShapeInput[] = [];
  readonly symbolSource = new Map<string, { input: string; axis: number }>();
  private readonly names = new Map<number, string>();
  private readonly cache = new Map<string, string>();
  private counter = 0;

  /** `reserved`: names the user chose (leaves, outputs), which generated names must avoid. */
  constructor(readonly target: EmitTarget, graphInputs: readonly Value[], frozen: ReadonlyMap<Value, HostArray | ExternalTensor>, private readonly reserved: ReadonlySet<string>) {
    for (const v of graphInputs) {
      this.names.set(v.id, (v.attrs as { name: string }).name);
      v.shape.forEach((d, axis) => {
        if (isSymbol(d) && !this.symbolSource.has(d)) this.symbolSource.set(d, { input: (v.attrs as { name: string }).name, axis });
      });
    }
    for (const [v, data] of frozen) {
      const name = (v.attrs as { name: string }).name;
      this.initializers.push(isExternal(data) ? externalProto(name, data, v) : tensorProto(name, data, v.shape as number[], v.dtype));
      this.names.set(v.id, name);
    }
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}${this.counter++}`; while (this.reserved.has(name));
    return name;
  }

  name(v: Value): string {
    const known = this.names.get(v.id);
    if (known !== undefined) return known;
    // Values built while emitting (e.g. an unsqueeze inside a scatter) are emitted on demand.
    for (const u of topoSort([v])) {
      if (!this.names.has(u.id)) this.names.set(u.id, u.op.emit(this, u));
    }
    return this.names.get(v.id)!;
  }

  sibling(v: Value, k: number): string {
    const first = this.name(v);
    const out = this.nodes.find((n) => n.output?.[0] === first)?.output?.[k];
    if (!out) throw new Error(`${v} was not emitted as a node with ${k + 1} outputs`);
    return out;
  }

  emitValue(v: Value, preferredName?: string): string {
    const before = this.nodes.length;
    let out = v.op.emit(this, v);
    // Give the value the requested output name when this emission created its producer.
    if (preferredName) {
      const producer = this.nodes.slice(before).find((n) => n.output?.includes(out));
      if (producer) {
        producer.output = producer.output!.map((o) => (o === out ? preferredName : o));
        out = preferredName;
      }
    }
    this.names.set(v.id, out);
    return out;
  }

  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { domain?: string; outputs?: number } = {}): string {
    const outputs = Array.from({ length: opts.outputs ?? 1 }, () => this.fresh('t'));
    const attribute = Object.keys(attrs).sort().map((k) => toAttribute(k, attrs[k]));
    this.nodes.push({ opType, input: inputs, output: outputs, attribute, domain: opts.domain ?? '', name: this.fresh(`${opType}_`) });
    return outputs[0];
  }

  /** Data of an IR value (a Constant): int64 data is written as int32 on webgpu. */
  tensor(data: HostArray, shape: readonly number[]): string {
    return this.initializer(this.target === 'webgpu' && data instanceof BigInt64Array ? toInt32(data) : data, shape);
  }

  private initializer(data: HostArray, shape: readonly number[]): string {
    const name = this.fresh('c');
    this.initializers.push(tensorProto(name, data, shape, dtypeOf(data)));
    return name;
  }

  /** Shapes, axes, pads: int64 on every target (ONNX wants them so, and kernels read them on the host). */
  ints(values: readonly number[]): string {
    const key = `ints:${values.join(',')}`;
    let name = this.cache.get(key);
    if (!name) {
      name = this.initializer(BigInt64Array.from(values, (x) => BigInt(x)), [values.length]);
      this.cache.set(key, name);
    }
    return name;
  }

  scalar(value: number, irDtype: DType): string {
    const dtype = deviceDtype(irDtype, this.target);
    const key = `scalar:${dtype}:${value}`;
    let name = this.cache.get(key);
    if (!name) {
      const data = dtype === 'float32' ? Float32Array.of(value) : dtype === 'float64' ? Float64Array.of(value)
        : dtype === 'int64' ? BigInt64Array.of(BigInt(value)) : dtype === 'int32' ? Int32Array.of(value) : Uint8Array.of(value ? 1 : 0);
      if (dtype === 'float16') throw new Error('float16 scalars are not supported');
      name = this.initializer(data, []);
      this.cache.set(key, name);
    }
    return name;
  }

  onnxType(dtype: DType): number {
    return ONNX_DTYPE[deviceDtype(dtype, this.target)];
  }

  shape(dims: Shape): string {
    if (dims.every(isStatic)) return this.ints(dims);
    if (this.target === 'webgpu') return this.shapeInput(dims);
    const key = `shape:${dims.join(',')}`;
    let name = this.cache.get(key);
    if (!name) {
      name = this.node('Concat', dims.map((d) => (isStatic(d) ? this.ints([d]) : this.dimTensor(d))), { axis: 0 });
      this.cache.set(key, name);
    }
    return name;
  }

  dim(d: Dim, irDtype: DType): string {
    const dtype = deviceDtype(irDtype, this.target);
    if (this.target === 'webgpu') {
      if (isStatic(d)) return this.scalar(d, dtype);
      if (dtype !== 'int32' && dtype !== 'float32') throw new Error(`emitOnnx: a run-time dimension as ${irDtype} is not supported on webgpu`);
      return this.shapeInput([d], dtype);
    }
    // The CPU reads it off the shapes: a [1] tensor made a scalar, cast when asked.
    const n = this.node('Reshape', [this.shape([d]), this.ints([])]);
    return dtype === 'int64' ? n : this.node('Cast', [n], { to: ONNX_DTYPE[dtype] });
  }

  /** A graph input the host fills with a shape, or one dimension's value as a scalar of `dtype`. */
  private shapeInput(dims: Shape, dtype?: 'int32' | 'float32'): string {
    const key = `input:${dtype ?? 'shape'}:${dims.join(',')}`;
    let name = this.cache.get(key);
    if (!name) {
      for (const d of dims) {
        for (const { syms } of dimTerms(d)) {
          const missing = syms.find((s) => !this.symbolSource.has(s));
          if (missing !== undefined) throw new Error(`dimension '${d}': no graph input has an axis of size ${missing}, so it cannot be computed at run time`);
        }
      }
      name = dtype ? `dim(${dims[0]}):${dtype}` : `shape(${dims.join(',')})`;
      if (this.reserved.has(name)) throw new Error(`emitOnnx: a leaf or output is named '${name}', the name of a shape input`);
      this.shapeInputs.push(dtype ? { name, dims: [...dims], dtype } : { name, dims: [...dims] });
      this.cache.set(key, name);
    }
    return name;
  }

  /** A symbolic dimension as a 1-element int64 tensor, computed from graph input shapes. */
  private dimTensor(d: Dim): string {
    const key = `dim:${d}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    let sum: string | undefined;
    for (const { coef, syms } of dimTerms(d)) {
      let term: string | undefined = coef !== 1 || syms.length === 0 ? this.ints([coef]) : undefined;
      for (const s of syms) {
        const src = this.symbolSource.get(s);
        if (!src) throw new Error(`dimension '${d}': no graph input has an axis of size ${s}, so it cannot be computed at run time`);
        const size = this.node('Shape', [src.input], { end: src.axis + 1, start: src.axis });
        term = term ? this.node('Mul', [term, size]) : size;
      }
      sum = sum ? this.node('Add', [sum, term!]) : term;
    }
    this.cache.set(key, sum!);
    return sum!;
  }
}

const isLeafKind = (v: Value): boolean => v.op.kind === 'Input' || v.op.kind === 'Param';

export function emitOnnx(opts: EmitOptions): EmittedModel {
  const frozen = opts.initializers ?? new Map<Value, HostArray | ExternalTensor>();
  const outputs = Object.entries(opts.outputs);
  const order = topoSort(outputs.map(([, v]) => v));
  const free = order.filter((v) => isLeafKind(v) && !frozen.has(v));
  const graphInputs = opts.inputs ? [...opts.inputs] : free.sort((a, b) => a.id - b.id);
  const listed = new Set(graphInputs.map((v) => v.id));
  const missing = free.filter((v) => !listed.has(v.id));
  if (missing.length > 0) throw new Error(`emitOnnx: ${missing.map(String).join(', ')} must be graph inputs or frozen initializers`);
  const seenNames = new Map<string, Value>();
  for (const v of [...graphInputs, ...frozen.keys()]) {
    const n = (v.attrs as { name: string }).name;
    const other = seenNames.get(n);
    if (other && other !== v) throw new Error(`emitOnnx: two leaves are named '${n}' (${other} and ${v})`);
    seenNames.set(n, v);
  }

  // Only the frozen parameters this graph reads are written into it.
  const usedFrozen = new Map(order.filter((v) => frozen.has(v)).map((v) => [v, frozen.get(v)!] as const));
  for (const [name] of outputs) {
    if (seenNames.has(name)) throw new Error(`emitOnnx: output '${name}' has the name of a graph input or initializer`);
  }
  // A leaf named like a generated name ('t3', 'c0') would otherwise be defined twice, or
  // silently fed in place of a constant.
  const reserved = new Set([...seenNames.keys(), ...outputs.map(([name]) => name)]);
  const target = opts.target ?? 'cpu';
  const w = new OnnxWriter(target, graphInputs, usedFrozen, reserved);
  // Only the frozen weights go out (they come first among the initializers); constants stay inline.
  const external = opts.externalData ? new ExternalData(opts.externalData.location, opts.externalData.minBytes ?? 0) : undefined;
  if (external) w.initializers.slice(0, usedFrozen.size).forEach((t) => external.place(t));

  const wanted = new Map<number, string>();
  for (const [name, v] of outputs) if (!isLeafKind(v) && !wanted.has(v.id)) wanted.set(v.id, name);
  for (const v of order) {
    if (isLeafKind(v)) continue;
    w.emitValue(v, wanted.get(v.id));
  }
  const graphOutputs = outputs.map(([name, v]) => {
    const have = w.name(v);
    if (have !== name) w.nodes.push({ opType: 'Identity', input: [have], output: [name], name: `Identity_out_${name}`, domain: '' });
    return valueInfo(name, deviceDtype(v.dtype, target), v.shape);
  });
  const inputInfos = graphInputs.map((v) => valueInfo((v.attrs as { name: string }).name, deviceDtype(v.dtype, target), v.shape));
  const shapeInfos = w.shapeInputs.map((s) => valueInfo(s.name, s.dtype ?? 'int64', s.dtype ? [] : [s.dims.length]));

  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'afd-studio',
    graph: {
      name: opts.name ?? 'afd',
      node: w.nodes,
      initializer: w.initializers,
      input: [...inputInfos, ...shapeInfos],
      output: graphOutputs,
    },
  });
  return {
    bytes: onnx.ModelProto.encode(model).finish(),
    inputNames: graphInputs.map((v) => (v.attrs as { name: string }).name),
    outputNames: outputs.map(([n]) => n),
    target,
    shapeInputs: w.shapeInputs,
    int32Inputs: target === 'webgpu' ? graphInputs.filter((v) => v.dtype === 'int64').map((v) => (v.attrs as { name: string }).name) : [],
    symbols: Object.fromEntries(w.symbolSource),
    ...(external ? { externalData: external.chunks } : {}),
  };
}
