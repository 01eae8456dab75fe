import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ArrayToF32, bf16ToF32, f16ArrayToF32, f16ToF32, f32ArrayToBf16, f32ArrayToF16, f32ToBf16, f32ToF16,
} from './float16.ts';

const f32bits = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0];

// Independent reference: round |x| on the target grid with exact double arithmetic.
function reference(x: number, mantBits: number, minExp: number, maxFinite: number, toBits: (v: number) => number): number {
  const a = Math.abs(x);
  const e = Math.max(Math.floor(Math.log2(a)), minExp);
  let ulp = 2 ** (e - mantBits);
  // Math.log2 may round across a binade edge: fix the ulp.
  if (a / ulp >= 2 ** (mantBits + 1)) ulp *= 2;
  else if (a / ulp < 2 ** mantBits && e > minExp) ulp /= 2;
  const lo = Math.floor(a / ulp) * ulp;
  const hi = lo + ulp;
  let r = a - lo < hi - a ? lo : hi - a < a - lo ? hi : (lo / ulp) % 2 === 0 ? lo : hi;
  if (r > maxFinite) r = Infinity;
  const bits = toBits(r);
  return x < 0 || Object.is(x, -0) ? bits | 0x8000 : bits;
}

test('f16 edge values', () => {
  assert.equal(f32ToF16(0), 0x0000);
  assert.equal(f32ToF16(-0), 0x8000);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-2), 0xc000);
  assert.equal(f32ToF16(65504), 0x7bff); // max
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f32ToF16(65519.99), 0x7bff); // below the halfway point to 2^16
  assert.equal(f32ToF16(65520), 0x7c00); // halfway, ties to even = infinity
  assert.equal(f32ToF16(1e10), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f32ToF16(2 ** -25), 0x0000); // halfway to the smallest subnormal, ties to even = 0
  assert.equal(f32ToF16(2 ** -25 * 1.0001), 0x0001);
  assert.equal(f32ToF16(3 * 2 ** -25), 0x0002); // 1.5 units, ties to even = 2
  assert.equal(f32ToF16(2 ** -14), 0x0400); // smallest normal
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f32ToF16(f32bits(1)), 0); // float32 subnormal
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2^-10: even is 1
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie: even is 1+2^-9
});

test('f16: every pattern round-trips, and narrowing matches an exact reference', () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) continue;
    assert.equal(f32ToF16(v), h, `pattern ${h.toString(16)}`);
  }
  const toBits = (v: number): number => {
    if (v === Infinity) return 0x7c00;
    if (v < 2 ** -14) return v / 2 ** -24;
    const e = Math.floor(Math.log2(v));
    return ((e + 15) << 10) | (v / 2 ** (e - 10) - 1024);
  };
  for (let b = 0; b < 0x7f800000; b += 4093) {
    for (const bits of [b, b | 0x80000000]) {
      const x = f32bits(bits);
      const want = x === 0 || Math.abs(x) < 2 ** -26 ? (bits >>> 16) & 0x8000 : reference(x, 10, -14, 65504, toBits);
      assert.equal(f32ToF16(x), want, `f32 bits ${bits.toString(16)}`);
    }
  }
});

test('bf16 edge values', () => {
  assert.equal(f32ToBf16(0), 0);
  assert.equal(f32ToBf16(-0), 0x8000);
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(bf16ToF32(0x7f7f), f32bits(0x7f7f0000)); // max
  assert.equal(f32ToBf16(f32bits(0x7f7fffff)), 0x7f80); // float32 max rounds to infinity
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  assert.equal(f32ToBf16(-Infinity), 0xff80);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(f32bits(0x7f800001))))); // NaN whose payload is below bf16's bits
  assert.equal(f32ToBf16(f32bits(1)), 0); // float32 smallest subnormal, ties... below half: 0
  assert.equal(f32ToBf16(f32bits(0x00010000)), 0x0001); // bf16 smallest subnormal
  assert.equal(f32ToBf16(f32bits(0x3f808000)), 0x3f80); // tie, even stays
  assert.equal(f32ToBf16(f32bits(0x3f818000)), 0x3f82); // tie, odd rounds up
  assert.equal(f32ToBf16(f32bits(0x3f808001)), 0x3f81); // above the tie
});

test('bf16: every pattern round-trips, and narrowing matches an exact reference', () => {
  for (let h = 0; h < 65536; h++) {
    const v = bf16ToF32(h);
    if (Number.isNaN(v)) continue;
    assert.equal(f32ToBf16(v), h);
  }
  const toBits = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16;
  for (let b = 1; b < 0x7f800000; b += 4093) {
    for (const bits of [b, b | 0x80000000]) {
      const x = f32bits(bits);
      assert.equal(f32ToBf16(x), reference(x, 7, -126, bf16ToF32(0x7f7f), toBits), `f32 bits ${bits.toString(16)}`);
    }
  }
});

test('array conversions agree with the scalar ones', () => {
  const xs = new Float32Array([0, -0, 1.5, -3.25e-6, 70000, 1e-8, 0.1, Infinity, -65504]);
  const h = f32ArrayToF16(xs);
  const b = f32ArrayToBf16(xs);
  assert.deepEqual([...h], [...xs].map(f32ToF16));
  assert.deepEqual([...b], [...xs].map(f32ToBf16));
  assert.deepEqual([...f16ArrayToF32(h)], [...h].map(f16ToF32));
  assert.deepEqual([...bf16ArrayToF32(b)], [...b].map(bf16ToF32));
});
