// The question-aware scoring and merge rules (runtime/cache/scores.ts, SnapKV, the product's Elastic), on
// hand-computed cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { avgPool1d, topKeep, windowScore } from '../../runtime/cache/scores.js';
import { SnapKVPolicy } from '../../runtime/cache/policies/snapkv.js';
import { QuestionElasticPolicy, sameModalityMergeAssign } from '../../runtime/cache/policies/elasticQuestion.js';
import { createPolicy } from '../../runtime/cache/policies/index.js';
import { ElasticPolicy } from '../../runtime/cache/policies/elastic.js';
import type { WindowAttention } from '../../runtime/cache/types.js';

const close = (a: ArrayLike<number>, b: number[]) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `[${i}] ${a[i]} vs ${b[i]}`);
};

// 2 heads, 2 queries, 4 keys.
const W: WindowAttention = {
  heads: 2, queries: 2, len: 4,
  data: Float32Array.from([
    0.5, 0.5, 0, 0, /* h0 q0 */ 0.25, 0.25, 0.25, 0.25, /* h0 q1 */
    1, 0, 0, 0, /* h1 q0 */ 0, 0, 0.5, 0.5, /* h1 q1 */
  ]),
};

test('windowScore averages the last queries and every head', () => {
  // all: ([.5,.5,0,0] + [.25,.25,.25,.25] + [1,0,0,0] + [0,0,.5,.5]) / 4
  close(windowScore(W), [0.4375, 0.1875, 0.1875, 0.1875]);
  // last query only: ([.25,.25,.25,.25] + [0,0,.5,.5]) / 2
  close(windowScore(W, 1), [0.125, 0.125, 0.375, 0.375]);
});

test('avgPool1d: centred kernel, zero padding counted (torch avg_pool1d)', () => {
  close(avgPool1d([3, 0, 0, 6], 3), [1, 1, 2, 2]);
  close(avgPool1d([3, 0, 0, 6], 1), [3, 0, 0, 6]);
  // only [1, 3) pooled; outside is padding and stays as it was
  close(avgPool1d([9, 3, 6, 9], 3, 1, 3), [9, 3, 3, 9]);
  assert.throws(() => avgPool1d([1], 2), /odd/);
});

test('topKeep: protected first, then the highest scores; ties keep the later position', () => {
  const protect = Uint8Array.from([1, 0, 0, 0, 0, 1]);
  assert.deepEqual([...topKeep([0, 5, 1, 5, 2, 0], 4, protect)], [1, 1, 0, 1, 0, 1]);
  // tie between 1 and 2 (score 1): the later (2) stays
  assert.deepEqual([...topKeep([0, 1, 1, 0, 0, 0], 3, protect)], [1, 0, 1, 0, 0, 1]);
  // more protected than the budget: the latest protected stay
  assert.deepEqual([...topKeep([0, 0, 0, 0, 0, 0], 1, protect)], [0, 0, 0, 0, 0, 1]);
});

test('sameModalityMergeAssign: a dropped image entry merges into an adjacent kept image entry only', () => {
  const keep = Uint8Array.from([1, 0, 1, 0, 0, 1]);
  const image = Uint8Array.from([0, 1, 1, 1, 0, 0]);
  // radius 0: plain eviction
  assert.deepEqual([...sameModalityMergeAssign(keep, image, 0)], [0, -1, 1, -1, -1, 2]);
  // radius 1: 1 -> slot of 2 (entry 0 is text), 3 -> slot of 2; 4 is text: evicted
  assert.deepEqual([...sameModalityMergeAssign(keep, image, 1)], [0, 1, 1, 1, -1, 2]);
});

/** A window in which query rows put all their mass on `hot` keys. */
function hotWindow(len: number, hot: number[], heads = 2, queries = 3): WindowAttention {
  const data = new Float32Array(heads * queries * len);
  for (let h = 0; h < heads; h++) for (let q = 0; q < queries; q++) for (const j of hot) data[(h * queries + q) * len + j] = 1 / hot.length;
  return { data, heads, queries, len };
}

test('SnapKV keeps the window and the pooled top scores, then evicts the oldest generated entry', () => {
  const p = new SnapKVPolicy({ keep: 0.5, window: 2, kernel: 1 });
  const len = 10;
  const plan = p.afterPrefill({ cacheLength: len, newEntries: len, tokensSeen: len, scores: null, numLayers: 1, window: [hotWindow(len, [1, 5, 6])] });
  // budget 5: window = 8, 9; then 1, 5, 6 (equal scores); everything else goes
  assert.deepEqual([...plan![0]], [-1, 0, -1, -1, -1, 1, 2, -1, 3, 4]);
  // a decode step: 6 entries, budget round(0.5 x 11) = 6: nothing; next: 7 entries, budget 6: the first generated (5) goes
  assert.equal(p.afterStep({ cacheLength: 6, tokensSeen: 11, scores: null, numLayers: 1 }), null);
  assert.deepEqual([...p.afterStep({ cacheLength: 7, tokensSeen: 12, scores: null, numLayers: 1 })![0]], [0, 1, 2, 3, 4, -1, 5]);
});

test('SnapKV pools with kernel 5 by default: a neighbour of a hot key outranks a lone cold one', () => {
  const p = new SnapKVPolicy({ keep: 0.4, window: 2 });
  const len = 10;
  const plan = p.afterPrefill({ cacheLength: len, newEntries: len, tokensSeen: len, scores: null, numLayers: 1, window: [hotWindow(len, [4])] });
  // budget 4: window 8, 9; pooled scores are 0.2 (x 1/1) at 2..6 (h 4 +/- 2): the latest two of them, 5 and 6, stay
  assert.deepEqual([...plan![0]].map((s) => s >= 0 ? 1 : 0), [0, 0, 0, 0, 0, 1, 1, 0, 1, 1]);
});

test('product Elastic: sinks and the question kept, the question\'s attention picks the anchors, P = kept length', () => {
  const p = new QuestionElasticPolicy({ keep: 0.5, startSize: 1, kernel: 1, distance: 0, rerank: 0, protectGlobal: false, mergeRadius: 0 });
  // 0 text (sink), 1..6 image, 7..9 text (the question)
  const imageMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  const plan = p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null, numLayers: 1, window: [hotWindow(10, [2])], imageMask });
  // budget 5: sink 0, question 7, 8, 9, anchor 2
  assert.deepEqual([...plan![0]], [0, -1, 1, -1, -1, -1, -1, 2, 3, 4]);
  assert.equal(p.evictionIndex, 5);
  // decode: over budget -> evict at P (the first generated entry), never the compressed prompt
  assert.deepEqual([...p.afterStep({ cacheLength: 7, tokensSeen: 12, scores: null, numLayers: 1 })![0]], [0, 1, 2, 3, 4, -1, 5]);
});

test('product Elastic on a re-expanded follow-up: only the new question\'s queries (questionLength) pick the anchors', () => {
  // 3 window queries: the first two (the earlier turn) look at entry 2, the last (the new question) at entry 4
  const len = 10;
  const data = new Float32Array(2 * 3 * len);
  for (let h = 0; h < 2; h++) {
    data[(h * 3 + 0) * len + 2] = 1;
    data[(h * 3 + 1) * len + 2] = 1;
    data[(h * 3 + 2) * len + 4] = 1;
  }
  const window = [{ data, heads: 2, queries: 3, len }];
  const imageMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  const opts = { keep: 0.5, startSize: 1, kernel: 1, distance: 0, rerank: 0, protectGlobal: false, mergeRadius: 0 };
  const ctx = { cacheLength: len, newEntries: len, tokensSeen: len, scores: null, numLayers: 1, window, imageMask };
  // all three queries: entry 2 scores 2/3, entry 4 1/3; budget 5 = sink, the 3 text entries, one anchor
  assert.deepEqual([...new QuestionElasticPolicy(opts).afterPrefill(ctx)![0]], [0, -1, 1, -1, -1, -1, -1, 2, 3, 4]);
  assert.deepEqual([...new QuestionElasticPolicy(opts).afterPrefill({ ...ctx, questionLength: 1 })![0]], [0, -1, -1, -1, 1, -1, -1, 2, 3, 4]);
});

test('product Elastic with the paper\'s distance evicts inside the prompt at P = kept - 25 (clamped)', () => {
  const p = new QuestionElasticPolicy({ keep: 0.5, startSize: 1, kernel: 1, distance: -2, rerank: 0, protectGlobal: false, mergeRadius: 0 });
  const imageMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null, numLayers: 1, window: [hotWindow(10, [2])], imageMask });
  assert.equal(p.evictionIndex, 3);
});

test('product Elastic needs the window attention: a clear error', () => {
  const p = new QuestionElasticPolicy({ keep: 0.5 });
  assert.throws(() => p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: [new Float32Array(10)] }), /window attention|attn_window/);
});

test('createPolicy: elastic is the product method by default; paper and released one option away', () => {
  assert.ok(createPolicy('elastic', { keep: 0.5 }) instanceof QuestionElasticPolicy);
  const paper = createPolicy('elastic', { keep: 0.5, variant: 'paper' });
  assert.ok(paper instanceof ElasticPolicy && !paper.releasedSelection && paper.importance === 'sum' && paper.merge);
  const rel = createPolicy('elastic', { keep: 0.5, variant: 'released' });
  assert.ok(rel instanceof ElasticPolicy && rel.releasedSelection);
  assert.ok(createPolicy('snapkv', { keep: 0.5 }) instanceof SnapKVPolicy);
});

/** Random per-head windows over `len` entries (rows sum to 1). */
function randomWindow(r: () => number, len: number, queries: number, heads = 2): WindowAttention {
  const data = new Float32Array(heads * queries * len);
  for (let row = 0; row < heads * queries; row++) {
    let s = 0;
    for (let j = 0; j < len; j++) s += data[row * len + j] = r();
    for (let j = 0; j < len; j++) data[row * len + j] /= s;
  }
  return { data, heads, queries, len };
}

for (const [name, make, minimum] of [
  ['elastic (answers, defaults)', (k: number) => new QuestionElasticPolicy({ keep: k }), 5],
  ['elastic (answers, paper stage 2)', (k: number) => new QuestionElasticPolicy({ keep: k, rerank: 0, mergeRadius: 0, protectGlobal: false }), 5],
  ['snapkv', (k: number) => new SnapKVPolicy({ keep: k }), 1],
  ['elastic (answers, global image, merge radius 1, decode re-rank)', (k: number) => new QuestionElasticPolicy({ keep: k, protectGlobal: true, mergeRadius: 1, rerank: 8 }), 5],
] as const) {
  test(`${name}: cache length == budget(k, T) after prefill and every step, across two turns`, async () => {
    const { budgetFor } = await import('../../runtime/cache/policies/budget.js');
    let seed = 7;
    const r = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (const k of [0.1, 0.2, 0.5, 0.9]) {
      const p = make(k);
      let len = 0;
      let T = 0;
      const apply = (plan: Int32Array[] | null) => {
        if (!plan) return;
        const lens = plan.map((a) => Math.max(-1, ...a) + 1);
        assert.ok(lens.every((x) => x === lens[0]), 'every layer one length');
        len = lens[0];
      };
      const prefill = (n: number, image: boolean) => {
        len += n;
        T += n;
        const imageMask = Uint8Array.from({ length: n }, (_, j) => (image && j >= 3 && j < n - 6 ? 1 : 0));
        apply(p.afterPrefill({ cacheLength: len, newEntries: n, tokensSeen: T, scores: null, numLayers: 2, imageMask,
          window: [randomWindow(r, len, Math.min(64, n)), randomWindow(r, len, Math.min(64, n))] }));
        assert.equal(len, Math.min(T, budgetFor(k, T, minimum)), `${name} k=${k} prefill T=${T}`);
      };
      const decode = (steps: number) => {
        for (let s = 0; s < steps; s++) {
          len++;
          T++;
          const row = () => Float32Array.from({ length: len }, r);
          apply(p.afterStep({ cacheLength: len, tokensSeen: T, scores: [row(), row()], numLayers: 2 }));
          assert.equal(len, Math.max(Math.min(T, budgetFor(k, T, minimum)), len > budgetFor(k, T, minimum) ? -1 : len), `${name} k=${k} step T=${T}`);
          assert.ok(len <= Math.max(budgetFor(k, T, minimum), 1), `${name} k=${k} step T=${T}: ${len} over budget`);
        }
      };
      prefill(80, true);
      decode(30);
      prefill(12, false);
      decode(10);
    }
  });
}

test('product Elastic keeps the global image (the last run of image tokens) with protectGlobal', () => {
  const p = new QuestionElasticPolicy({ keep: 0.6, startSize: 1, kernel: 1, protectGlobal: true, mergeRadius: 0 });
  // 0 sink, 1..3 tile image, 4 text marker, 5..6 global image, 7..9 question; the question looks at 2 only
  const imageMask = Uint8Array.from([0, 1, 1, 1, 0, 1, 1, 0, 0, 0]);
  const plan = p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null, numLayers: 1, window: [hotWindow(10, [2])], imageMask });
  // budget 6: sink, question (3), global image (2): no room left for the attended tile patch
  assert.deepEqual([...plan![0]].map((x) => (x >= 0 ? 1 : 0)), [1, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
});

test('product Elastic decode re-rank: the lowest accumulated entry outside sinks and recent ones goes', () => {
  const p = new QuestionElasticPolicy({ keep: 0.5, startSize: 1, kernel: 1, rerank: 2, protectGlobal: false, mergeRadius: 0 });
  const imageMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  // kept: 0, 2, 7, 8, 9 -> accumulators [0, 1, 0, 0, 0] (the window rows put all their mass on entry 2)
  p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null, numLayers: 1, window: [hotWindow(10, [2])], imageMask });
  // step 1: 6 entries, budget 6 (T 11 -> 5.5 -> 6): none; the step's row adds to every entry
  assert.equal(p.afterStep({ cacheLength: 6, tokensSeen: 11, scores: [Float32Array.from([0, 0, 0.5, 0, 0, 0])], numLayers: 1 }), null);
  // step 2: 7 entries, budget 6; candidates are slots [1, 5) (the 2 most recent protected), accumulated
  // [1, 0.5 + 0.3, 0.1, 0]: slot 4 (the question's last token, never attended) goes
  const plan = p.afterStep({ cacheLength: 7, tokensSeen: 12, scores: [Float32Array.from([0, 0, 0.3, 0.1, 0, 0, 0])], numLayers: 1 });
  assert.deepEqual([...plan![0]], [0, 1, 2, 3, -1, 4, 5]);
});

test('remapFlags follows a plan: one flag per new slot, set when any entry of the slot is flagged', async () => {
  const { remapFlags } = await import('../../runtime/cache/policies/elasticQuestion.js');
  assert.deepEqual([...remapFlags(Uint8Array.from([1, 0, 1, 1, 0]), Int32Array.from([0, -1, 1, 1, 2]))], [1, 1, 0]);
  // an unordered merge: entry 0 (unflagged) joins slot 1, whose kept entry 3 is flagged
  assert.deepEqual([...remapFlags(Uint8Array.from([0, 0, 0, 1]), Int32Array.from([1, 0, -1, 1]))], [0, 1]);
});

test('similarMergeAssign: a dropped image entry joins the kept image entry with the most similar key (cosine over the KV heads)', async () => {
  const { similarMergeAssign } = await import('../../runtime/cache/policies/elasticQuestion.js');
  // one KV head, headDim 2; entries: 0 text kept, 1 image kept [1 0], 2 image dropped [0.9 0.1], 3 image kept [0 1],
  // 4 image dropped [0.1 2] (length does not matter, direction does), 5 text dropped
  const keys = Float32Array.from([5, 5, 1, 0, 0.9, 0.1, 0, 1, 0.1, 2, 1, 1]);
  const keep = Uint8Array.from([1, 1, 0, 1, 0, 0]);
  const image = Uint8Array.from([0, 1, 1, 1, 1, 0]);
  assert.deepEqual([...similarMergeAssign(keep, image, keys, 1, 2)], [0, 1, 1, 2, 2, -1]);
  // an early dropped entry may join a later anchor (unordered): entry 1 [0 1] -> entry 3 [0 2], not entry 2 [1 0]
  assert.deepEqual([...similarMergeAssign(Uint8Array.from([1, 0, 1, 1]), Uint8Array.from([0, 1, 1, 1]), Float32Array.from([1, 1, 0, 1, 1, 0, 0, 2]), 1, 2)], [0, 2, 1, 2]);
  // two KV heads: the heads are one vector. Entry 2 is [1 0 | 0 1]: head 0 alone would pick entry 0 ([1 0 | 1 0]),
  // both heads together pick entry 1 ([0.6 0.8 | 0 1]: cosine 0.8 against 0.5)
  const two = Float32Array.from([
    1, 0, 0.6, 0.8, 1, 0, // head 0: entries 0, 1, 2
    1, 0, 0, 1, 0, 1, //     head 1
  ]);
  assert.deepEqual([...similarMergeAssign(Uint8Array.from([1, 1, 0]), Uint8Array.from([1, 1, 1]), two, 2, 2)], [0, 1, 1]);
  // no kept image entry: dropped image entries are evicted
  assert.deepEqual([...similarMergeAssign(Uint8Array.from([1, 0]), Uint8Array.from([0, 1]), Float32Array.from([1, 0, 0, 1]), 1, 2)], [0, -1]);
  assert.throws(() => similarMergeAssign(Uint8Array.from([1, 0]), Uint8Array.from([0, 1]), new Float32Array(3), 1, 2), /keys/);
});

test('product Elastic merges by key similarity where the keys are given, by adjacency where not; mass is on by default', () => {
  const imageMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  // keep 0.6: the sink 0, the question 7..9 and the two hot image entries 2 and 5 (6 of 10). One KV head, headDim 2:
  // entries 2, 4, 6 point one way, 1, 3, 5 the other.
  const keys = new Float32Array(20);
  for (let j = 0; j < 10; j++) keys.set(j % 2 === 0 ? [1, 0] : [0, 1], 2 * j);
  const ctx = { cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null, numLayers: 1, window: [hotWindow(10, [2, 5])], imageMask, kvHeads: 1 };
  const opts = { keep: 0.6, startSize: 1, kernel: 1, protectGlobal: false };
  const similar = new QuestionElasticPolicy(opts);
  assert.equal(similar.mass, true);
  // slots: 0 -> 0, 2 -> 1, 5 -> 2, 7..9 -> 3..5; by key: 1 and 3 join entry 5, 4 and 6 join entry 2
  assert.deepEqual([...similar.afterPrefill({ ...ctx, keys: () => keys, headDim: 2 })![0]], [0, 2, 1, 2, 1, 2, 1, 3, 4, 5]);
  // without keys (the GPU store): the adjacent image entry, the earlier side first
  const adjacent = [0, 1, 1, 1, 2, 2, 2, 3, 4, 5];
  assert.deepEqual([...new QuestionElasticPolicy(opts).afterPrefill(ctx)![0]], adjacent);
  assert.deepEqual([...new QuestionElasticPolicy({ ...opts, similar: false }).afterPrefill({ ...ctx, keys: () => keys, headDim: 2 })![0]], adjacent);
  assert.equal(new QuestionElasticPolicy({ ...opts, mass: false }).mass, false);
});

test('product Elastic keepProtected: decode re-ranking never evicts the question while other candidates remain', () => {
  const p = new QuestionElasticPolicy({ keep: 0.5, startSize: 1, kernel: 1, rerank: 2, protectGlobal: false, mergeRadius: 0, keepProtected: true });
  const imageMask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null, numLayers: 1, window: [hotWindow(10, [2])], imageMask });
  assert.equal(p.afterStep({ cacheLength: 6, tokensSeen: 11, scores: [Float32Array.from([0, 0, 0.5, 0, 0, 0])], numLayers: 1 }), null);
  // as in the re-rank test, but slots 2..4 (the question) are protected: the anchor (slot 1) goes instead
  const plan = p.afterStep({ cacheLength: 7, tokensSeen: 12, scores: [Float32Array.from([0, 0, 0.3, 0.1, 0, 0, 0])], numLayers: 1 });
  assert.deepEqual([...plan![0]], [0, -1, 1, 2, 3, 4, 5]);
});

test('stepEvictions: the excess, plus batch - 1 more when past the budget, within the room', async () => {
  const { stepEvictions } = await import('../../runtime/cache/policies/budget.js');
  assert.equal(stepEvictions(100, 100, 16), 0); // within the budget
  assert.equal(stepEvictions(101, 100), 1); // batch 1: the excess
  assert.equal(stepEvictions(101, 100, 16), 16); // down to 85 = budget - 15
  assert.equal(stepEvictions(103, 100, 16), 18); // a follow-up's excess plus the batch
  assert.equal(stepEvictions(101, 100, 16, 10), 10); // the policy's room caps it
  assert.equal(stepEvictions(105, 100, 16, 3), 5); // never less than the excess
});

// On the GPU each compaction is a run of its own: with evictBatch the policies compact once every batch steps
// and still never hold more than the budget.
for (const [name, make, minimum] of [
  ['elastic (answers, defaults)', (k: number, b: number) => new QuestionElasticPolicy({ keep: k, evictBatch: b }), 5],
  ['elastic (answers, paper stage 2)', (k: number, b: number) => new QuestionElasticPolicy({ keep: k, rerank: 0, evictBatch: b }), 5],
  ['elastic (paper)', (k: number, b: number) => createPolicy('elastic', { keep: k, variant: 'paper', evictBatch: b }), 5],
  ['h2o', (k: number, b: number) => createPolicy('h2o', { keep: k, evictBatch: b }), 1],
  ['streaming', (k: number, b: number) => createPolicy('streaming', { keep: k, evictBatch: b }), 5],
  ['snapkv', (k: number, b: number) => new SnapKVPolicy({ keep: k, evictBatch: b }), 1],
] as const) {
  test(`${name}: evictBatch 8 compacts once every 8 steps at most, never over the budget`, async () => {
    const { budgetFor } = await import('../../runtime/cache/policies/budget.js');
    let seed = 11;
    const r = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (const k of [0.2, 0.5]) {
      const p = make(k, 8);
      let len = 0;
      let T = 0;
      let compactions = 0;
      const apply = (plan: Int32Array[] | null) => {
        if (!plan) return false;
        len = Math.max(-1, ...plan[0]) + 1;
        return true;
      };
      const n = 120;
      len = T = n;
      const imageMask = Uint8Array.from({ length: n }, (_, j) => (j >= 3 && j < n - 6 ? 1 : 0));
      const row = () => Float32Array.from({ length: len }, r);
      apply(p.afterPrefill({ cacheLength: len, newEntries: n, tokensSeen: T, scores: [row(), row()], numLayers: 2, imageMask,
        window: [randomWindow(r, len, 64), randomWindow(r, len, 64)] }));
      assert.equal(len, budgetFor(k, T, minimum), `${name} k=${k}: the prefill compresses to the budget exactly`);
      for (let s = 0; s < 64; s++) {
        len++;
        T++;
        const budget = budgetFor(k, T, minimum);
        const over = len > budget;
        const compacted = apply(p.afterStep({ cacheLength: len, tokensSeen: T, scores: [row(), row()], numLayers: 2,
          window: [randomWindow(r, len, 1), randomWindow(r, len, 1)] }));
        if (compacted) {
          compactions++;
          assert.ok(over, `${name} k=${k} T=${T}: compacted within the budget`);
          assert.equal(len, budget - 7, `${name} k=${k} T=${T}: evicts down to budget - 7`);
        }
        assert.ok(len <= budget, `${name} k=${k} T=${T}: ${len} over the budget ${budget}`);
      }
      // The budget grows by k a step, so the cache reaches it again after at least 8 / (1 - k) steps.
      assert.ok(compactions >= 1 && compactions <= Math.ceil(64 * (1 - k) / 8) + 1, `${name} k=${k}: ${compactions} compactions in 64 steps`);
    }
  });
}

test('the key search through onnxruntime gives the reference loop\'s merges (random keys, 3 KV heads)', async () => {
  const { similarMergeAssign, similarMergeAssignFast } = await import('../../runtime/cache/policies/elasticQuestion.js');
  let s = 7;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const len = 300, H = 3, D = 16;
  const keys = Float32Array.from({ length: H * len * D }, rnd);
  const image = Uint8Array.from({ length: len }, (_, j) => (j >= 4 && j < 260 ? 1 : 0));
  const keep = Uint8Array.from({ length: len }, (_, j) => (j < 4 || j >= 280 || j % 5 === 0 ? 1 : 0));
  const ref = similarMergeAssign(keep, image, keys, H, D);
  assert.deepEqual([...(await similarMergeAssignFast(keep, image, keys, H, D))], [...ref]);
  assert.ok(ref.some((a, j) => !keep[j] && a >= 0), 'some dropped entries merge');
  // and the policy's async path plans what its sync path plans
  const window = [hotWindow(len, [10, 50, 120], 2, 3)];
  const ctx = { cacheLength: len, newEntries: len, tokensSeen: len, scores: null, numLayers: 1, window, imageMask: image, kvHeads: H, keys: () => keys, headDim: D };
  const sync = new QuestionElasticPolicy({ keep: 0.3 }).afterPrefill(ctx)![0];
  const fast = (await new QuestionElasticPolicy({ keep: 0.3 }).afterPrefillAsync(ctx))![0];
  assert.deepEqual([...fast], [...sync]);
});
