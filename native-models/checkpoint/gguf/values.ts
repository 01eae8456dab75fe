// GGUF metadata values: the 13 value types, and typed values for writing a key with the
// exact type llama.cpp checks (it refuses `llama.context_length` stored as i32, not u32).

/** The metadata value types of the GGUF format (gguf.h). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** A metadata value as read: 64-bit integers are bigints, every other number a number. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** A value with its GGUF type; `itemType` for arrays (GGUF arrays hold one type). */
export interface GgufTypedValue {
  type: GgufValueType;
  itemType?: GgufValueType;
  value: GgufValue;
}

/** A value type's name as gguf.h spells it in lower case ('u32', 'string', 'array of f32'). */
export function valueTypeName(type: GgufValueType, itemType?: GgufValueType): string {
  const name = VALUE_TYPE_NAMES[type] ?? `value type ${type}`;
  return type === GgufValueType.ARRAY && itemType !== undefined ? `array of ${valueTypeName(itemType)}` : name;
}

const VALUE_TYPE_NAMES: Readonly<Record<number, string>> = {
  [GgufValueType.UINT8]: 'u8',
  [GgufValueType.INT8]: 'i8',
  [GgufValueType.UINT16]: 'u16',
  [GgufValueType.INT16]: 'i16',
  [GgufValueType.UINT32]: 'u32',
  [GgufValueType.INT32]: 'i32',
  [GgufValueType.FLOAT32]: 'f32',
  [GgufValueType.BOOL]: 'bool',
  [GgufValueType.STRING]: 'string',
  [GgufValueType.ARRAY]: 'array',
  [GgufValueType.UINT64]: 'u64',
  [GgufValueType.INT64]: 'i64',
  [GgufValueType.FLOAT64]: 'f64',
};

/** Bytes of one scalar of `type` (strings and arrays have no fixed size: undefined). */
export function scalarSize(type: GgufValueType): number | undefined {
  return SCALAR_SIZES[type];
}

const SCALAR_SIZES: Readonly<Record<number, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

const scalar = (type: GgufValueType) => (value: number): GgufTypedValue => ({ type, value });
const wide = (type: GgufValueType) => (value: number | bigint): GgufTypedValue => ({ type, value: BigInt(value) });
const array = (itemType: GgufValueType) => (values: readonly GgufValue[]): GgufTypedValue => ({ type: GgufValueType.ARRAY, itemType, value: [...values] });

/**
 * Typed metadata values for `writeGguf`: `gguf.u32(8192)`, `gguf.f32(10000)`,
 * `gguf.array(GgufValueType.FLOAT32, scores)` or its shorthands `gguf.f32s(scores)`.
 * Untyped JS values get gguf-py's choice (see writer.ts), which is not always llama.cpp's.
 */
export const gguf = {
  u8: scalar(GgufValueType.UINT8),
  i8: scalar(GgufValueType.INT8),
  u16: scalar(GgufValueType.UINT16),
  i16: scalar(GgufValueType.INT16),
  u32: scalar(GgufValueType.UINT32),
  i32: scalar(GgufValueType.INT32),
  f32: scalar(GgufValueType.FLOAT32),
  f64: scalar(GgufValueType.FLOAT64),
  u64: wide(GgufValueType.UINT64),
  i64: wide(GgufValueType.INT64),
  bool: (value: boolean): GgufTypedValue => ({ type: GgufValueType.BOOL, value }),
  string: (value: string): GgufTypedValue => ({ type: GgufValueType.STRING, value }),
  array: (itemType: GgufValueType, values: readonly GgufValue[]): GgufTypedValue => array(itemType)(values),
  strings: array(GgufValueType.STRING),
  f32s: array(GgufValueType.FLOAT32),
  i32s: array(GgufValueType.INT32),
  u32s: array(GgufValueType.UINT32),
};

export function isTypedValue(v: GgufValue | GgufTypedValue): v is GgufTypedValue {
  return typeof v === 'object' && !Array.isArray(v);
}
