// CPU plan application: gathers, mean merges, GQA (every KV head gets the same indices), in-place
// compaction, the fp16 path, and the block-copy fast path for evictions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyAssign,
  applyAssignHalf,
  compileAssign,
  f16ToF32,
  f32ToF16,
  planSummary,
  slotWeights,
} from '../../runtime/cache/compact.js';

const i32 = (a: number[]) => Int32Array.from(a);

test('applyAssign with 2 KV heads: same indices on every head, mean merges', () => {
  // heads 2, len 5, headDim 3; entry j of head h holds [100h + 10j, 100h + 10j + 1, 100h + 10j + 2].
  const heads = 2, len = 5, D = 3;
  const data = new Float32Array(heads * len * D);
  for (let h = 0; h < heads; h++) for (let j = 0; j < len; j++) for (let i = 0; i < D; i++) data[(h * len + j) * D + i] = 100 * h + 10 * j + i;
  // assign: 0 -> slot 0, 1 evicted, 2 and 3 merged into slot 1, 4 -> slot 2.
  const r = applyAssign(data, heads, len, D, i32([0, -1, 1, 1, 2]));
  assert.equal(r.newLen, 3);
  // head 0: [0 1 2] | mean([20 21 22], [30 31 32]) = [25 26 27] | [40 41 42]
  // head 1: [100 101 102] | [125 126 127] | [140 141 142]
  assert.deepEqual(Array.from(r.data), [0, 1, 2, 25, 26, 27, 40, 41, 42, 100, 101, 102, 125, 126, 127, 140, 141, 142]);
  assert.equal(data[3], 10, 'input untouched unless inPlace');
});

test('a single eviction is two block copies per head; in place equals a fresh copy', () => {
  const heads = 3, len = 9, D = 4;
  const data = Float32Array.from({ length: heads * len * D }, (_, i) => i * 0.5);
  const assign = i32([0, 1, 2, 3, -1, 4, 5, 6, 7]); // evict entry 4
  const c = compileAssign(assign);
  assert.equal(c.ops, 2); // two runs: entries 0..3 -> slots 0..3, entries 5..8 -> slots 4..7
  assert.deepEqual([...c.dst.slice(0, 2), ...c.src.slice(0, 2), ...c.count.slice(0, 2)], [0, 4, 0, 5, 4, 4]);
  const fresh = applyAssign(data, heads, len, D, assign);
  const expected: number[] = [];
  for (let h = 0; h < heads; h++) for (let j = 0; j < len; j++) if (j !== 4) for (let i = 0; i < D; i++) expected.push(data[(h * len + j) * D + i]);
  assert.deepEqual(Array.from(fresh.data), expected);
  const copy = Float32Array.from(data);
  const inPlace = applyAssign(copy, heads, len, D, assign, { inPlace: true });
  assert.equal(inPlace.data.buffer, copy.buffer);
  assert.deepEqual(Array.from(inPlace.data), expected);
  // merges in place too (sources read before their slot is written)
  const mergeAssign = i32([0, 1, 1, -1, 2, 2, 2, 3, 4]);
  const a = applyAssign(data, heads, len, D, mergeAssign);
  const b = applyAssign(Float32Array.from(data), heads, len, D, mergeAssign, { inPlace: true });
  assert.deepEqual(Array.from(b.data), Array.from(a.data));
  assert.deepEqual(planSummary([mergeAssign, mergeAssign]), { newLength: 5, merged: 6, evicted: 2, perLayerMerged: [3, 3], perLayerEvicted: [1, 1] });
  assert.deepEqual(planSummary(null, 9), { newLength: 9, merged: 0, evicted: 0, perLayerMerged: [], perLayerEvicted: [] });
});

test('applyAssign rejects malformed input', () => {
  assert.throws(() => applyAssign(new Float32Array(6), 1, 3, 2, i32([0, 1])), /entries/);
  assert.throws(() => applyAssign(new Float32Array(5), 1, 3, 2, i32([0, 1, 2])), /elements/);
  assert.throws(() => applyAssign(new Float32Array(6), 1, 3, 2, i32([0, -2, 1])), /invalid slot/);
  assert.throws(() => applyAssign(new Float32Array(6), 1, 3, 2, i32([0, 2, 2])), /dense/);
});

test('fp16 conversion: known bit patterns, round to nearest even, subnormals, overflow', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
    [0.1, 0x2e66], [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000] /* tie -> even (0) */,
    [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002] /* 1.5 ulp -> even 2 */, [1 + 2 ** -11, 0x3c00] /* tie -> even */,
    [1 + 3 * 2 ** -11, 0x3c02] /* tie -> even */, [2047 * 2 ** -25, 0x0400] /* rounds up into the smallest normal */,
    [0, 0], [-0, 0x8000],
  ];
  for (const [x, bits] of cases) assert.equal(f32ToF16(x), bits, `f32ToF16(${x})`);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff)) continue; // NaN payloads
    assert.equal(f32ToF16(f16ToF32(h)), h, `round trip ${h.toString(16)}`);
  }
});

test('fp16 path equals the fp32 path within fp16 rounding', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 8 - 4;
  const heads = 2, len = 12, D = 16;
  const half = Uint16Array.from({ length: heads * len * D }, () => f32ToF16(rand()));
  const asF32 = Float32Array.from(half, (h) => f16ToF32(h));
  const assign = i32([0, 1, 1, 1, -1, 2, 3, 3, 4, -1, 5, 6]);
  const h = applyAssignHalf(half, heads, len, D, assign);
  const f = applyAssign(asF32, heads, len, D, assign);
  assert.equal(h.newLen, f.newLen);
  for (let i = 0; i < f.data.length; i++) {
    // exactly the fp32 mean rounded once to fp16, hence within half an fp16 ulp of it
    assert.equal(h.data[i], f32ToF16(f.data[i]));
    const ulp = Math.max(2 ** -24, 2 ** (Math.floor(Math.log2(Math.abs(f.data[i]) || 1)) - 10));
    assert.ok(Math.abs(f16ToF32(h.data[i]) - f.data[i]) <= ulp / 2 + 1e-12);
  }
  // pure copies stay bitwise
  assert.equal(h.data[0], half[0]);
});

test('an unordered plan (merges from anywhere) is applied into a fresh array, with plain or count-weighted means', () => {
  // heads 2, len 4, D 2; entry j of head h holds [100h + 10j, 100h + 10j + 1]
  const heads = 2, len = 4, D = 2;
  const data = Float32Array.from({ length: heads * len * D }, (_, k) => {
    const h = Math.floor(k / (len * D)), j = Math.floor((k % (len * D)) / D), i = k % D;
    return 100 * h + 10 * j + i;
  });
  // slot 0 <- entry 1; slot 1 <- entries 0 and 3 (entry 0 precedes slot 0's source: unordered); entry 2 goes
  const assign = i32([1, 0, -1, 1]);
  assert.equal(compileAssign(assign).ordered, false);
  assert.equal(compileAssign(i32([0, 0, -1, 1])).ordered, true);
  const copy = Float32Array.from(data);
  const r = applyAssign(copy, heads, len, D, assign, { inPlace: true });
  assert.notEqual(r.data.buffer, copy.buffer, 'unordered: not in place');
  assert.deepEqual(Array.from(copy), Array.from(data), 'the source is left as it was');
  // head 0: [10 11] | mean([0 1], [30 31]) = [15 16]; head 1: [110 111] | [115 116]
  assert.deepEqual(Array.from(r.data), [10, 11, 15, 16, 110, 111, 115, 116]);
  // weights: entry 3 stands for 3 entries -> (1 x [0 1] + 3 x [30 31]) / 4 = [22.5 23.5]
  const w = Float32Array.from([1, 1, 1, 3]);
  const rw = applyAssign(data, heads, len, D, assign, { weights: w });
  assert.deepEqual(Array.from(rw.data), [10, 11, 22.5, 23.5, 110, 111, 122.5, 123.5]);
  assert.deepEqual(Array.from(slotWeights(assign, w)), [1, 4]);
  // the fp16 path agrees (these values are exact in fp16)
  const half = applyAssignHalf(Uint16Array.from(data, f32ToF16), heads, len, D, assign, { weights: w });
  assert.deepEqual(Array.from(half.data, f16ToF32), Array.from(rw.data));
  // all-ones weights are the plain mean, bit for bit
  const ones = applyAssign(data, heads, len, D, i32([0, 0, 1, 1]), { weights: new Float32Array(4).fill(1) });
  assert.deepEqual(Array.from(ones.data), Array.from(applyAssign(data, heads, len, D, i32([0, 0, 1, 1])).data));
  assert.throws(() => applyAssign(data, heads, len, D, assign, { weights: new Float32Array(3) }), /weights/);
});
