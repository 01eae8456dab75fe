// Activation memory counted on the graph: what the backward pass keeps from the forward.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from './index.ts';

test('dimensions evaluate from their symbols', () => {
  assert.equal(T.evalDim(T.dimAdd('T', -1), { T: 64 }), 63);
  assert.equal(T.evalDim(7, {}), 7);
  assert.throws(() => T.evalDim('B', {}), /needs a value for 'B'/);
  assert.equal(T.valueBytes(T.input('x', 'float32', ['B', 'T', 3]), { B: 2, T: 5 }), 2 * 5 * 3 * 4);
});

test("saved activations: tanh keeps its output, a product keeps only its inputs (leaves), a reshape counts once", () => {
  const x = T.input('x', 'float32', ['B', 3]);
  const w = T.param('w', [3]);
  const y = T.tanh(T.mul(x, w)); // tanh's rule reads y; mul's rule reads x and w, which are leaves
  const loss = T.reduceSum(y);
  assert.equal(T.savedActivationBytes(loss, T.grad(loss, [w]), { B: 10 }), 10 * 3 * 4);

  // u * reshape(u): the rule reads both factors, one buffer in ONNX Runtime.
  const u = T.mul(x, w);
  const loss2 = T.reduceSum(T.mul(u, T.reshape(u, ['B', 3])));
  assert.equal(T.savedActivationBytes(loss2, T.grad(loss2, [w]), { B: 10 }), 10 * 3 * 4);
});

test('a value computed from parameters alone (a transposed weight) is not an activation', () => {
  const x = T.input('x', 'float32', ['B', 4]);
  const w = T.param('w', [3, 4]);
  const y = T.tanh(T.matmul(x, T.transpose(w, [1, 0]))); // [B, 3]; the backward reads w^T and y
  const loss = T.reduceSum(y);
  assert.equal(T.savedActivationBytes(loss, T.grad(loss, [w]), { B: 10 }), 10 * 3 * 4);
});

test("SiLU keeps only its input, RMSNorm its input and [..., 1] statistics", () => {
  const x = T.input('x', 'float32', ['B', 8]);
  const a = T.param('a', [8]);
  const z = T.mul(x, a); // an activation [B, 8]: the mul's rule reads x and a, leaves
  // silu's rule reads z alone (not its sigmoid, not its output).
  const l1 = T.reduceSum(T.silu(z));
  assert.equal(T.savedActivationBytes(l1, T.grad(l1, [a]), { B: 10 }), 10 * 8 * 4);
  // rmsNorm (z r w, r = (mean(z^2) + eps)^-1/2): z, mean(z^2) + eps and r, not z r.
  const l2 = T.reduceSum(T.rmsNorm(z, T.param('w', [8])));
  assert.equal(T.savedActivationBytes(l2, T.grad(l2, [a]), { B: 10 }), 10 * (8 + 1 + 1) * 4);
});
