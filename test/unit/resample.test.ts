// Resampling equals Pillow's Image.resize. Expected values were produced by Pillow 9.4 (Debian 12) on the same
// inputs: a 10-pixel step edge (0 | 200) enlarged to 20 and reduced to 5 pixels with LANCZOS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BILINEAR, resampleRgb } from '../../runtime/model/resample.js';

function edge(): Uint8Array {
  const a = new Uint8Array(10 * 3);
  for (let x = 5; x < 10; x++) a.fill(200, x * 3, x * 3 + 3);
  return a;
}
const red = (o: Uint8Array, n: number) => Array.from({ length: n }, (_, i) => o[i * 3]);

test('LANCZOS enlargement rings exactly like Pillow', () => {
  assert.deepEqual(red(resampleRgb(edge(), 10, 1, 20, 1), 20), [0, 0, 0, 0, 0, 1, 6, 0, 0, 42, 158, 221, 212, 194, 199, 200, 200, 200, 200, 200]);
});

test('LANCZOS reduction widens the kernel by the factor, like Pillow', () => {
  assert.deepEqual(red(resampleRgb(edge(), 10, 1, 5, 1), 5), [4, 0, 100, 216, 196]);
});

test('vertical pass equals the horizontal one on the transposed image', () => {
  const col = resampleRgb(edge(), 1, 10, 1, 20);
  assert.deepEqual(red(col, 20), [0, 0, 0, 0, 0, 1, 6, 0, 0, 42, 158, 221, 212, 194, 199, 200, 200, 200, 200, 200]);
});

test('bilinear by hand: 2 pixels (0, 100) to 4 -> centres at 0.25, 0.75, 1.25, 1.75 of the source', () => {
  const a = Uint8Array.from([0, 0, 0, 100, 100, 100]);
  // output centre x+0.5 maps to (x+0.5)/2 in source: 0.25 -> 0 (clamped at the edge), 0.75 -> 25, 1.25 -> 75, 1.75 -> 100
  assert.deepEqual(red(resampleRgb(a, 2, 1, 4, 1, BILINEAR), 4), [0, 25, 75, 100]);
});

test('same size is a copy', () => {
  const a = edge();
  const o = resampleRgb(a, 10, 1, 10, 1);
  assert.deepEqual(o, a);
  assert.notEqual(o, a);
});
