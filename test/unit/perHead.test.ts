// Per-KV-head selection (Elastic's `perHead`, issue 15) pinned on hand-computed cases: a layer of 4 query heads over
// 2 KV heads (GQA groups {0, 1} -> KV head 0, {2, 3} -> KV head 1) whose heads prefer different entries; the kept
// entries per head, the merges per head, stage 2's per-head re-ranking, and the K/V the CPU store holds afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuestionElasticPolicy } from '../../runtime/cache/policies/elasticQuestion.js';
import { CpuKvStore, pastName, presentName } from '../../runtime/cache/store.js';
import { applyAssignHalf, isPerHead, planSummary, validatePlan } from '../../runtime/cache/compact.js';
import { KeptTracker } from '../../runtime/cache/kept.js';
import { kvGroup, windowScore } from '../../runtime/cache/scores.js';
import { ort } from '../../runtime/model/ort.js';
import type { PolicyOptions, WindowAttention } from '../../runtime/cache/types.js';

/** A one-query window over `len` entries: rows[h] maps entry -> probability for query head h. */
function window(len: number, rows: Record<number, number>[]): WindowAttention {
  const data = new Float32Array(rows.length * len);
  rows.forEach((r, h) => {
    for (const [j, p] of Object.entries(r)) data[h * len + Number(j)] = p;
  });
  return { data, heads: rows.length, queries: 1, len };
}

// 0 text (sink), 1..6 image, 7..9 text (the question). The question's single window query:
//   KV head 0's group: h0 -> entry 2; h1 -> entries 2 and 6 by halves: group mean 2: 0.75, 6: 0.25
//   KV head 1's group: h2 -> entry 5; h3 -> 5: 0.4, 6: 0.6:            group mean 5: 0.70, 6: 0.30
//   all four heads (per layer): 2: 0.375, 5: 0.35, 6: 0.275
const LEN = 10;
const IMAGE = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
const PREFILL = window(LEN, [{ 2: 1 }, { 2: 0.5, 6: 0.5 }, { 5: 1 }, { 5: 0.4, 6: 0.6 }]);
// budget 5 = sink 0 + the question 7, 8, 9 + one anchor per head
const BASE: PolicyOptions = { keep: 0.5, startSize: 1, kernel: 1, distance: 0, rerank: 0, protectGlobal: false, mergeRadius: 0 };
const prefill = (p: QuestionElasticPolicy, kvHeads = 2) =>
  p.afterPrefill({ cacheLength: LEN, newEntries: LEN, tokensSeen: LEN, scores: null, numLayers: 1, window: [PREFILL], imageMask: IMAGE, kvHeads });

test('kvGroup and windowScore over one group: the GQA query heads of a KV head, averaged', () => {
  assert.deepEqual(kvGroup(8, 2, 0), [0, 4]);
  assert.deepEqual(kvGroup(8, 2, 1), [4, 8]);
  assert.deepEqual(kvGroup(4, 4, 3), [3, 4]);
  assert.throws(() => kvGroup(6, 4, 0), /cannot be grouped/);
  assert.deepEqual([...windowScore(PREFILL, 1, 0, 2)].map((x) => +x.toFixed(6)), [0, 0, 0.75, 0, 0, 0, 0.25, 0, 0, 0]);
  assert.deepEqual([...windowScore(PREFILL, 1, 2, 4)].map((x) => +x.toFixed(6)), [0, 0, 0, 0, 0, 0.7, 0.3, 0, 0, 0]);
  assert.deepEqual([...windowScore(PREFILL, 1)].map((x) => +x.toFixed(6)), [0, 0, 0.375, 0, 0, 0.35, 0.275, 0, 0, 0]);
  assert.throws(() => windowScore(PREFILL, 1, 2, 5), /query heads/);
});

test('per layer (perHead off, the default): one anchor for every head, the 4-head mean\'s best (entry 2)', () => {
  const plan = prefill(new QuestionElasticPolicy(BASE))!;
  assert.equal(plan[0].length, LEN);
  assert.deepEqual([...plan[0]], [0, -1, 1, -1, -1, -1, -1, 2, 3, 4]);
  // kvHeads 1 with perHead: one head is one layer, the same plan
  assert.deepEqual([...prefill(new QuestionElasticPolicy({ ...BASE, perHead: true }), 1)![0]], [0, -1, 1, -1, -1, -1, -1, 2, 3, 4]);
});

test('per KV head: head 0 keeps entry 2, head 1 entry 5; sinks and question kept in both; one length', () => {
  const plan = prefill(new QuestionElasticPolicy({ ...BASE, perHead: true }))!;
  assert.equal(plan.length, 1);
  assert.equal(plan[0].length, 2 * LEN);
  assert.deepEqual([...plan[0].subarray(0, LEN)], [0, -1, 1, -1, -1, -1, -1, 2, 3, 4]);
  assert.deepEqual([...plan[0].subarray(LEN)], [0, -1, -1, -1, -1, 1, -1, 2, 3, 4]);
  assert.ok(isPerHead(plan[0], 2, LEN));
  assert.equal(validatePlan(plan, LEN, 1, 2), 5);
  assert.throws(() => validatePlan(plan, LEN, 1), /assign has 20 entries/); // without kvHeads: refused
  const s = planSummary(plan, LEN);
  assert.equal(s.newLength, 5);
  assert.equal(s.evicted, 5); // per head: 5 evicted (mean over heads)
  assert.equal(s.merged, 0);
});

test('per KV head with the adjacent-image merge: each head folds its own neighbours into its own anchor', () => {
  const plan = prefill(new QuestionElasticPolicy({ ...BASE, perHead: true, mergeRadius: 1 }))!;
  // head 0: 1 and 3 (image, next to 2) merge into 2; 4, 5, 6 go. head 1: 4 and 6 merge into 5; 1, 2, 3 go.
  assert.deepEqual([...plan[0].subarray(0, LEN)], [0, 1, 1, 1, -1, -1, -1, 2, 3, 4]);
  assert.deepEqual([...plan[0].subarray(LEN)], [0, -1, -1, -1, 1, 1, 1, 2, 3, 4]);
  const s = planSummary(plan, LEN);
  assert.equal(s.merged, 2);
  assert.equal(s.evicted, 3);
});

/** K/V of 1 layer, 2 KV heads, head_dim 2: key[h][j][d] = 100 h + 10 j + d, value = -key. */
function kv(): { key: Float32Array; value: Float32Array } {
  const key = new Float32Array(2 * LEN * 2);
  for (let h = 0; h < 2; h++) for (let j = 0; j < LEN; j++) for (let d = 0; d < 2; d++) key[(h * LEN + j) * 2 + d] = 100 * h + 10 * j + d;
  return { key, value: key.map((x) => -x) };
}
const entry = (h: number, j: number) => [100 * h + 10 * j, 100 * h + 10 * j + 1];

async function storeAfter(plan: Int32Array[]): Promise<{ key: number[]; value: number[]; length: number }> {
  const store = new CpuKvStore({ layers: 1, kvHeads: 2, headDim: 2, dtype: 'float32' });
  const { key, value } = kv();
  store.adopt({
    [presentName(0, 'key')]: new ort.Tensor('float32', key, [1, 2, LEN, 2]),
    [presentName(0, 'value')]: new ort.Tensor('float32', value, [1, 2, LEN, 2]),
  });
  await store.apply(plan);
  const f = store.feeds();
  assert.deepEqual(f[pastName(0, 'key')].dims, [1, 2, store.length, 2]);
  return { key: [...(f[pastName(0, 'key')].data as Float32Array)], value: [...(f[pastName(0, 'value')].data as Float32Array)], length: store.length };
}

test('CPU store applies a per-KV-head plan: each head holds its own entries (bytes checked)', async () => {
  const plan = prefill(new QuestionElasticPolicy({ ...BASE, perHead: true }))!;
  const r = await storeAfter(plan);
  assert.equal(r.length, 5);
  const want = [...[0, 2, 7, 8, 9].flatMap((j) => entry(0, j)), ...[0, 5, 7, 8, 9].flatMap((j) => entry(1, j))];
  assert.deepEqual(r.key, want);
  assert.deepEqual(r.value, want.map((x) => -x));
});

test('CPU store applies per-head merges: the mean of each head\'s own group', async () => {
  const plan = prefill(new QuestionElasticPolicy({ ...BASE, perHead: true, mergeRadius: 1 }))!;
  const r = await storeAfter(plan);
  // head 0 slot 1 = mean of entries 1, 2, 3 = entry 2's values; head 1 slot 1 = mean of 4, 5, 6 = entry 5's
  const want = [...[0, 2, 7, 8, 9].flatMap((j) => entry(0, j)), ...[0, 5, 7, 8, 9].flatMap((j) => entry(1, j))];
  assert.deepEqual(r.key, want);
  assert.deepEqual(r.value, want.map((x) => -x));
});

test('CPU store: a per-layer plan still moves every head alike; fp16 per-head copies stay bitwise', async () => {
  const r = await storeAfter(prefill(new QuestionElasticPolicy(BASE))!);
  assert.deepEqual(r.key, [0, 1].flatMap((h) => [0, 2, 7, 8, 9].flatMap((j) => entry(h, j))));
  const bits = Uint16Array.from({ length: 2 * LEN * 2 }, (_, i) => 0x3c00 + i);
  const assign = Int32Array.from([0, -1, 1, -1, -1, -1, -1, 2, 3, 4, 0, -1, -1, -1, -1, 1, -1, 2, 3, 4]);
  const out = applyAssignHalf(bits, 2, LEN, 2, assign);
  assert.equal(out.newLen, 5);
  const at = (h: number, j: number) => [0x3c00 + (h * LEN + j) * 2, 0x3c00 + (h * LEN + j) * 2 + 1];
  assert.deepEqual([...out.data], [...[0, 2, 7, 8, 9].flatMap((j) => at(0, j)), ...[0, 5, 7, 8, 9].flatMap((j) => at(1, j))]);
  // heads ending at different lengths: refused
  const uneven = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, -1, -1, -1, -1, 1, -1, 2, 3, 4]);
  assert.throws(() => applyAssignHalf(bits, 2, LEN, 2, uneven), /head 1 ends at length 5, head 0 at 10/);
});

test('stage 2 re-ranking per KV head: each head evicts its own lowest accumulated score', () => {
  const p = new QuestionElasticPolicy({ ...BASE, perHead: true, rerank: 1 });
  prefill(p);
  // After stage 1 the accumulators hold the pooled scores of the kept slots: head 0 [0, .75, 0, 0, 0], head 1 [0, .7, 0, 0, 0].
  // Step 1 (6 entries, budget 6: nothing goes): group 0 attends slots 2/4/5 by .4/.3/.3, group 1 slots 2/3/5 by .3/.4/.3.
  const g0 = { 2: 0.4, 4: 0.3, 5: 0.3 };
  const g1 = { 2: 0.3, 3: 0.4, 5: 0.3 };
  const mean = (w: WindowAttention) => [windowScore(w, 1)];
  const w1 = window(6, [g0, g0, g1, g1]);
  assert.equal(p.afterStep({ cacheLength: 6, tokensSeen: 11, scores: mean(w1), numLayers: 1, window: [w1], kvHeads: 2 }), null);
  // Step 2 (7 entries, budget 6: one goes; slot 6 is the recent window): every head attends only slot 6.
  // head 0: slots 1..5 = .75, .4, 0, .3, .3 -> slot 3 goes; head 1: .7, .3, .4, 0, .3 -> slot 4 goes
  const w2 = window(7, [{ 6: 1 }, { 6: 1 }, { 6: 1 }, { 6: 1 }]);
  const plan = p.afterStep({ cacheLength: 7, tokensSeen: 12, scores: mean(w2), numLayers: 1, window: [w2], kvHeads: 2 })!;
  assert.deepEqual([...plan[0].subarray(0, 7)], [0, 1, 2, -1, 3, 4, 5]);
  assert.deepEqual([...plan[0].subarray(7)], [0, 1, 2, 3, -1, 4, 5]);
  // per layer, the same steps: the head-averaged rows give slot 3 .2 and slot 4 .15: slot 4 goes in both heads
  const q = new QuestionElasticPolicy({ ...BASE, rerank: 1 });
  prefill(q);
  q.afterStep({ cacheLength: 6, tokensSeen: 11, scores: mean(w1), numLayers: 1, window: [w1], kvHeads: 2 });
  const perLayer = q.afterStep({ cacheLength: 7, tokensSeen: 12, scores: mean(w2), numLayers: 1, window: [w2], kvHeads: 2 })!;
  assert.equal(perLayer[0].length, 7);
  assert.deepEqual([...perLayer[0]], [0, 1, 2, 3, -1, 4, 5]);
});

test('per-head stage 2 at the fixed index (rerank 0) evicts the same slot in every head: a per-layer assign', () => {
  const p = new QuestionElasticPolicy({ ...BASE, perHead: true });
  prefill(p);
  const plan = p.afterStep({ cacheLength: 7, tokensSeen: 12, scores: null, numLayers: 1, kvHeads: 2 })!;
  assert.deepEqual([...plan[0]], [0, 1, 2, 3, 4, -1, 5]);
});

test('perHead: refused with blend, and without the cache\'s KV heads', () => {
  assert.throws(() => new QuestionElasticPolicy({ ...BASE, perHead: true, blend: 0.3 }), /blend/);
  const p = new QuestionElasticPolicy({ ...BASE, perHead: true });
  assert.throws(() => p.afterPrefill({ cacheLength: LEN, newEntries: LEN, tokensSeen: LEN, scores: null, numLayers: 1, window: [PREFILL], imageMask: IMAGE }), /kvHeads/);
});

test('KeptTracker replays per-head plans: a position shows kept when any head holds it', () => {
  const t = new KeptTracker(1, 0);
  t.append('tiiiiiittt');
  const plan = prefill(new QuestionElasticPolicy({ ...BASE, perHead: true, mergeRadius: 1 }))!;
  t.apply(plan);
  assert.deepEqual(t.lengths, [5]);
  // head 0: 0, {1,2,3}, 7, 8, 9; head 1: 0, {4,5,6}, 7, 8, 9
  assert.equal(t.snapshot().layers[0], 'kmmmmmmkkk');
  // a per-layer plan after it moves both heads alike: evict slot 1 (head 0's {1,2,3}, head 1's {4,5,6})
  t.apply([Int32Array.from([0, -1, 1, 2, 3])]);
  assert.equal(t.snapshot().layers[0], 'k------kkk');
});
