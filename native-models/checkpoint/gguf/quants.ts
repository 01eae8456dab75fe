// ggml tensor types: their block layout, dequantization to float32 and the encodings the
// writer needs (F32, F16, BF16, Q8_0).
//
// Each dequantizer mirrors gguf-py's `gguf.quants` (numpy, itself a port of ggml-quants.c)
// operation for operation in float32, so the results are bit-identical: a product of a
// float32 scale and a small integer is exact in a double and rounds once when stored or
// passed through Math.fround, and a float32 sum of two float32 values computed in double
// and rounded once is the correctly rounded float32 sum. Where numpy rounds an
// intermediate (d * sc before multiplying by q), so do we, with Math.fround.

import { f32ToBf16, f32ToF16, f16ToF32 } from '../../runtime/float16.ts';

/** ggml type ids as in ggml.h. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
}

const QK_K = 256;

/**
 * Elements per block and bytes per block of every type ggml knows (GGML_QUANT_SIZES in
 * gguf-py), so that a file's tensor table can be checked even for types we cannot dequantize.
 */
const SIZES: Readonly<Record<number, readonly [blockSize: number, typeSize: number]>> = {
  [GgmlType.F32]: [1, 4],
  [GgmlType.F16]: [1, 2],
  [GgmlType.Q4_0]: [32, 2 + 16],
  [GgmlType.Q4_1]: [32, 2 + 2 + 16],
  [GgmlType.Q5_0]: [32, 2 + 4 + 16],
  [GgmlType.Q5_1]: [32, 2 + 2 + 4 + 16],
  [GgmlType.Q8_0]: [32, 2 + 32],
  // ggml's block_q8_1 is f16 d, f16 s, 32 int8 (gguf-py still says 40 bytes, the old f32 layout);
  // it is a dot-product intermediate that files do not hold, so it is not dequantized here.
  [GgmlType.Q8_1]: [32, 2 + 2 + 32],
  [GgmlType.Q2_K]: [QK_K, 2 + 2 + QK_K / 16 + QK_K / 4],
  [GgmlType.Q3_K]: [QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  [GgmlType.Q4_K]: [QK_K, 2 + 2 + QK_K / 2 + 12],
  [GgmlType.Q5_K]: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12],
  [GgmlType.Q6_K]: [QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16],
  [GgmlType.Q8_K]: [QK_K, 4 + QK_K + QK_K / 8],
  [GgmlType.IQ2_XXS]: [QK_K, 2 + QK_K / 4],
  [GgmlType.IQ2_XS]: [QK_K, 2 + QK_K / 4 + QK_K / 32],
  [GgmlType.IQ3_XXS]: [QK_K, 2 + QK_K / 4 + QK_K / 8],
  [GgmlType.IQ1_S]: [QK_K, 2 + QK_K / 8 + QK_K / 16],
  [GgmlType.IQ4_NL]: [32, 2 + 16],
  [GgmlType.IQ3_S]: [QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  [GgmlType.IQ2_S]: [QK_K, 2 + QK_K / 4 + QK_K / 16],
  [GgmlType.IQ4_XS]: [QK_K, 2 + 2 + QK_K / 2 + QK_K / 64],
  [GgmlType.I8]: [1, 1],
  [GgmlType.I16]: [1, 2],
  [GgmlType.I32]: [1, 4],
  [GgmlType.I64]: [1, 8],
  [GgmlType.F64]: [1, 8],
  [GgmlType.IQ1_M]: [QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [GgmlType.BF16]: [1, 2],
  [GgmlType.TQ1_0]: [QK_K, 2 + 4 * 13],
  [GgmlType.TQ2_0]: [QK_K, 2 + 64],
  [GgmlType.MXFP4]: [32, 1 + 16],
  [GgmlType.NVFP4]: [64, 4 + 32],
  [GgmlType.Q1_0]: [128, 2 + 16],
};

/** 'Q4_K' etc.; 'type 99' for an id ggml does not define. */
export function ggmlTypeName(t: number): string {
  return GgmlType[t] ?? `type ${t}`;
}

/** Block size and bytes per block, or undefined for an id ggml does not define. */
export function ggmlTypeSize(t: number): { blockSize: number; typeSize: number } | undefined {
  const s = SIZES[t];
  return s && { blockSize: s[0], typeSize: s[1] };
}

// f16 -> f32 by table: one load per scale instead of a branchy conversion.
const F16 = new Float32Array(65536);
for (let h = 0; h < 65536; h++) F16[h] = f16ToF32(h);

type Dequantizer = (src: Uint8Array, out: Float32Array, nBlocks: number) => void;

const f16At = (src: Uint8Array, o: number): number => F16[src[o] | (src[o + 1] << 8)];
const i8 = (byte: number): number => (byte << 24) >> 24;
const fr = Math.fround;

const DEQUANTIZERS: Partial<Record<GgmlType, Dequantizer>> = {
  [GgmlType.F32](src, out, n) {
    out.set(new Float32Array(src.buffer, src.byteOffset, n));
  },
  [GgmlType.F16](src, out, n) {
    for (let i = 0, o = 0; i < n; i++, o += 2) out[i] = f16At(src, o);
  },
  [GgmlType.BF16](src, out, n) {
    const bits = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0, o = 0; i < n; i++, o += 2) bits[i] = (src[o] | (src[o + 1] << 8)) << 16;
  },
  [GgmlType.F64](src, out, n) {
    out.set(new Float64Array(src.buffer, src.byteOffset, n)); // rounds to nearest float32, like numpy's astype
  },

  // Q4_0: d (f16), 16 bytes of nibbles: the low nibbles are elements 0..15, the high 16..31; q - 8.
  [GgmlType.Q4_0](src, out, nb) {
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 18, y += 32) {
      const d = f16At(src, o);
      for (let j = 0; j < 16; j++) {
        const q = src[o + 2 + j];
        out[y + j] = d * ((q & 15) - 8);
        out[y + j + 16] = d * ((q >> 4) - 8);
      }
    }
  },
  // Q4_1: d, m (f16), nibbles as Q4_0, unsigned; d * q + m.
  [GgmlType.Q4_1](src, out, nb) {
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 20, y += 32) {
      const d = f16At(src, o);
      const m = f16At(src, o + 2);
      for (let j = 0; j < 16; j++) {
        const q = src[o + 4 + j];
        out[y + j] = fr(d * (q & 15)) + m;
        out[y + j + 16] = fr(d * (q >> 4)) + m;
      }
    }
  },
  // Q5_0: d, qh (u32: bit j is the fifth bit of element j), nibbles as Q4_0; q - 16.
  [GgmlType.Q5_0](src, out, nb) {
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 22, y += 32) {
      const d = f16At(src, o);
      const qh = src[o + 2] | (src[o + 3] << 8) | (src[o + 4] << 16) | (src[o + 5] << 24);
      for (let j = 0; j < 16; j++) {
        const q = src[o + 6 + j];
        out[y + j] = d * (((q & 15) | (((qh >>> j) & 1) << 4)) - 16);
        out[y + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
      }
    }
  },
  // Q5_1: d, m, qh, nibbles; d * q + m.
  [GgmlType.Q5_1](src, out, nb) {
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 24, y += 32) {
      const d = f16At(src, o);
      const m = f16At(src, o + 2);
      const qh = src[o + 4] | (src[o + 5] << 8) | (src[o + 6] << 16) | (src[o + 7] << 24);
      for (let j = 0; j < 16; j++) {
        const q = src[o + 8 + j];
        out[y + j] = fr(d * ((q & 15) | (((qh >>> j) & 1) << 4))) + m;
        out[y + j + 16] = fr(d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4))) + m;
      }
    }
  },
  // Q8_0: d, 32 int8.
  [GgmlType.Q8_0](src, out, nb) {
    const s8 = new Int8Array(src.buffer, src.byteOffset, src.byteLength);
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 34, y += 32) {
      const d = f16At(src, o);
      for (let j = 0; j < 32; j++) out[y + j] = d * s8[o + 2 + j];
    }
  },

  // Q2_K: scales[16] (low nibble: scale, high: min, of 16 elements each), qs[64] (2-bit),
  // d, dmin. Element e = h*128 + s*32 + l reads bits 2s..2s+1 of qs[h*32 + l]; its group is e >> 4.
  [GgmlType.Q2_K](src, out, nb) {
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 84, y += QK_K) {
      const d = f16At(src, o + 80);
      const dmin = f16At(src, o + 82);
      for (let g = 0; g < 16; g++) {
        const sc = src[o + g];
        const dl = fr(d * (sc & 15));
        const ml = fr(dmin * (sc >> 4));
        const h = g >> 3, s = (g >> 1) & 3, l0 = (g & 1) * 16;
        const qs = o + 16 + h * 32 + l0, shift = 2 * s;
        const e0 = y + g * 16;
        for (let l = 0; l < 16; l++) out[e0 + l] = fr(dl * ((src[qs + l] >> shift) & 3)) - ml;
      }
    }
  },
  // Q3_K: hmask[32], qs[64] (low 2 bits), scales[12] (16 6-bit scales), d.
  // Element e: low bits from qs[(e >> 7) * 32 + (e & 31)] at bit 2 * ((e >> 5) & 3), high bit
  // from hmask[e & 31] at bit e >> 5; a CLEAR high bit subtracts 4 (ggml's convention).
  // Scale i: low nibble of scales[i] (i < 8) or high nibble of scales[i - 8], plus bits
  // 2 * (i >> 2) of scales[8 + (i & 3)] as bits 4..5; minus 32.
  [GgmlType.Q3_K](src, out, nb) {
    const dl = new Float64Array(16);
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 110, y += QK_K) {
      const d = f16At(src, o + 108);
      const sc = o + 96;
      for (let i = 0; i < 16; i++) {
        const low = i < 8 ? src[sc + i] & 15 : src[sc + i - 8] >> 4;
        const high = (src[sc + 8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        dl[i] = fr(d * ((low | (high << 4)) - 32));
      }
      for (let e = 0; e < QK_K; e++) {
        const l = e & 31;
        const ql = (src[o + 32 + (e >> 7) * 32 + l] >> (2 * ((e >> 5) & 3))) & 3;
        const hbit = (src[o + l] >> (e >> 5)) & 1;
        out[y + e] = dl[e >> 4] * (ql - ((hbit ^ 1) << 2));
      }
    }
  },
  [GgmlType.Q4_K]: (src, out, nb) => dequantizeQ45K(src, out, nb, false),
  [GgmlType.Q5_K]: (src, out, nb) => dequantizeQ45K(src, out, nb, true),
  // Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d.
  // Element e: low nibble (bit 4 * ((e >> 6) & 1)) of ql[(e >> 7) * 64 + (e & 63)], high bits
  // 2 * ((e >> 5) & 3) of qh[(e >> 7) * 32 + (e & 31)]; q - 32, times d * scales[e >> 4].
  [GgmlType.Q6_K](src, out, nb) {
    const dl = new Float64Array(16);
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 210, y += QK_K) {
      const d = f16At(src, o + 208);
      for (let i = 0; i < 16; i++) dl[i] = fr(d * i8(src[o + 192 + i]));
      for (let e = 0; e < QK_K; e++) {
        const h = e >> 7;
        const ql = (src[o + h * 64 + (e & 63)] >> (4 * ((e >> 6) & 1))) & 15;
        const qh = (src[o + 128 + h * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        out[y + e] = dl[e >> 4] * ((ql | (qh << 4)) - 32);
      }
    }
  },
  // Q8_K: d (f32), 256 int8, bsums (int16[16], unused here).
  [GgmlType.Q8_K](src, out, nb) {
    const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let b = 0, o = 0, y = 0; b < nb; b++, o += 292, y += QK_K) {
      const d = view.getFloat32(o, true);
      for (let j = 0; j < QK_K; j++) out[y + j] = d * i8(src[o + 4 + j]);
    }
  },
};

/**
 * Q4_K and Q5_K: d, dmin (f16), scales[12] (eight 6-bit scales and eight 6-bit mins),
 * [Q5_K: qh[32]], qs[128]. Sub-block j (32 elements) reads nibble j & 1 of qs[(j >> 1) * 32 + l]
 * (and, for Q5_K, bit j of qh[l] as bit 4). The 12 scale bytes hold, for j < 4, scale j
 * in the low 6 bits of byte j and min j in the low 6 bits of byte j + 4; for j >= 4, the low
 * 4 bits of scale and min in the nibbles of byte j + 4 and their top 2 bits in the top 2 bits
 * of bytes j - 4 and j.
 */
function dequantizeQ45K(src: Uint8Array, out: Float32Array, nb: number, five: boolean): void {
  const size = five ? 176 : 144;
  const qsAt = five ? 48 : 16;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += size, y += QK_K) {
    const d = f16At(src, o);
    const dmin = f16At(src, o + 2);
    const s = o + 4;
    for (let j = 0; j < 8; j++) {
      const sc = j < 4 ? src[s + j] & 63 : (src[s + j + 4] & 15) | ((src[s + j - 4] >> 2) & 0x30);
      const mn = j < 4 ? src[s + j + 4] & 63 : (src[s + j + 4] >> 4) | ((src[s + j] >> 2) & 0x30);
      const dl = fr(d * sc);
      const ml = fr(dmin * mn);
      const qs = o + qsAt + (j >> 1) * 32, shift = 4 * (j & 1);
      const e0 = y + j * 32;
      if (five) {
        for (let l = 0; l < 32; l++) {
          const q = ((src[qs + l] >> shift) & 15) | (((src[o + 16 + l] >> j) & 1) << 4);
          out[e0 + l] = fr(dl * q) - ml;
        }
      } else {
        for (let l = 0; l < 32; l++) out[e0 + l] = fr(dl * ((src[qs + l] >> shift) & 15)) - ml;
      }
    }
  }
}

/** The types `dequantize` accepts, in id order. */
export const DEQUANTIZABLE: readonly GgmlType[] = Object.keys(DEQUANTIZERS).map(Number).sort((a, b) => a - b);

export function canDequantize(t: number): boolean {
  return DEQUANTIZERS[t as GgmlType] !== undefined;
}

/**
 * `n` values of type `type` from their raw bytes (`src` holds exactly the tensor's data).
 * The caller has checked `n` against the block size and `src`'s length (the reader does).
 */
export function dequantize(type: GgmlType, src: Uint8Array, n: number): Float32Array {
  const fn = DEQUANTIZERS[type];
  const size = SIZES[type];
  if (!fn || !size) throw new Error(`Cannot dequantize ${ggmlTypeName(type)}; supported: ${DEQUANTIZABLE.map(ggmlTypeName).join(', ')}.`);
  const [blockSize, typeSize] = size;
  const nBlocks = n / blockSize;
  if (!Number.isInteger(nBlocks) || src.byteLength !== nBlocks * typeSize) {
    throw new Error(`${n} ${ggmlTypeName(type)} values need ${Math.ceil(nBlocks) * typeSize} bytes in whole blocks of ${blockSize}, not ${src.byteLength}.`);
  }
  // Typed views over src need its natural alignment; copy the rare unaligned input.
  const align = type === GgmlType.F64 ? 8 : 4;
  const data = src.byteOffset % align === 0 ? src : src.slice();
  const out = new Float32Array(n);
  fn(data, out, blockSize === 1 ? n : nBlocks);
  return out;
}

/** The encodings the writer produces from float32 values. */
export type EncodableType = GgmlType.F32 | GgmlType.F16 | GgmlType.BF16 | GgmlType.Q8_0;

export const ENCODABLE: readonly EncodableType[] = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0];

/** Bytes of `n` values of `type` (n a whole number of blocks). */
export function encodedSize(type: GgmlType, n: number): number {
  const [blockSize, typeSize] = SIZES[type];
  return (n / blockSize) * typeSize;
}

/** float32 values -> raw bytes of `type`. Q8_0 matches gguf-py's `quantize` (and ggml's reference) bit for bit. */
export function encode(type: EncodableType, values: Float32Array): Uint8Array {
  const n = values.length;
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(values.buffer, values.byteOffset, n * 4); // a view: no copy of a large tensor
    case GgmlType.F16:
    case GgmlType.BF16: {
      const bits = new Uint16Array(n);
      const narrow = type === GgmlType.F16 ? f32ToF16 : f32ToBf16;
      for (let i = 0; i < n; i++) bits[i] = narrow(values[i]);
      return new Uint8Array(bits.buffer);
    }
    case GgmlType.Q8_0:
      return quantizeQ8_0(values);
    default:
      throw new Error(`Cannot encode ${ggmlTypeName(type)}; the writer encodes ${ENCODABLE.map(ggmlTypeName).join(', ')}.`);
  }
}

/**
 * Q8_0 as ggml's quantize_row_q8_0_ref: d = max|x| / 127 (float32), q = round(x * (1 / d))
 * with halves away from zero; d is stored as f16 after q was computed with the unrounded d.
 */
function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new Error(`Q8_0 needs a multiple of 32 values, not ${values.length}.`);
  const nb = values.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let b = 0, o = 0, x = 0; b < nb; b++, o += 34, x += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[x + j]));
    const d = fr(amax / 127);
    const id = d === 0 ? 0 : fr(1 / d);
    const h = f32ToF16(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < 32; j++) {
      const v = fr(values[x + j] * id);
      // x + 0.5 is exact in a double for |v| <= 128, so floor gives round-half-away-from-zero.
      const q = v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
      out[o + 2 + j] = q & 0xff;
    }
  }
  return out;
}
