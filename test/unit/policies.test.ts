// Cache policies pinned on hand-computed cases: kept positions, merged values, tie rules, the
// elastic eviction sequence, budget arithmetic at every step, multi-turn, H2O remapping, sinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicy } from '../../runtime/cache/policies/index.js';
import { budgetFor } from '../../runtime/cache/policies/budget.js';
import { elasticMergeAssign, releasedMergeAssign, ElasticPolicy } from '../../runtime/cache/policies/elastic.js';
import { H2OPolicy } from '../../runtime/cache/policies/h2o.js';
import { StreamingPolicy } from '../../runtime/cache/policies/streaming.js';
import { applyAssign, planSummary, validatePlan } from '../../runtime/cache/compact.js';
import type { CachePlan, CachePolicy, LayerAssign, PolicyOptions } from '../../runtime/cache/types.js';

const f32 = (a: number[]) => Float32Array.from(a);
const arr = (a: Int32Array) => Array.from(a);

/** Deterministic PRNG (mulberry32) so "random" scores are reproducible. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A simulated cache: per layer, for each entry the ORIGINAL token ids folded into it. Plans are
 * validated and applied the way the store applies them.
 */
class Sim {
  layers: number[][][] = [];
  tokens = 0;
  constructor(readonly numLayers: number) {
    for (let l = 0; l < numLayers; l++) this.layers.push([]);
  }
  get length(): number {
    return this.layers[0].length;
  }
  append(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const layer of this.layers) layer.push([this.tokens]);
      this.tokens++;
    }
  }
  /** Applies a plan; returns, per layer, the entries that were evicted (their id lists). */
  apply(plan: CachePlan): number[][][] {
    if (!plan) return this.layers.map(() => []);
    validatePlan(plan, this.length, this.numLayers);
    return this.layers.map((layer, l) => {
      const assign = plan[l];
      const next: number[][] = [];
      const evicted: number[][] = [];
      layer.forEach((ids, j) => {
        const s = assign[j];
        if (s < 0) evicted.push(ids);
        else (next[s] ??= []).push(...ids);
      });
      this.layers[l] = next;
      return evicted;
    });
  }
}

const randomScores = (r: () => number, layers: number, len: number) =>
  Array.from({ length: layers }, () => Float32Array.from({ length: len }, () => r()));

// ---------------------------------------------------------------- budget

test('budgetFor: round half up of k x T, with a floor at the policy minimum', () => {
  assert.equal(budgetFor(0.5, 20), 10);
  assert.equal(budgetFor(0.5, 21), 11); // 10.5 -> 11 (half up)
  assert.equal(budgetFor(0.3, 5), 2); // 1.5 -> 2
  assert.equal(budgetFor(0.7, 15), 11); // 10.5 -> 11 despite 0.7 being 0.6999... in binary
  assert.equal(budgetFor(0.1, 24), 2); // 2.4 -> 2
  assert.equal(budgetFor(0.1, 10, 5), 5); // 1 -> minimum 5
  assert.equal(budgetFor(1, 37), 37);
  assert.throws(() => budgetFor(0, 10), /KEPT/);
  assert.throws(() => budgetFor(1.5, 10), /KEPT/);
});

// ---------------------------------------------------------------- elastic stage 1

// Scores shared by the stage-1 tests (len 10, startSize 1, keep 6 -> F = 4):
//   pos:   0    1    2    3    4    5    6    7    8    9
//   score: 9   .5   .1   .8   .2   .2   .9  .05   .7   .3
const SCORE = [9, 0.5, 0.1, 0.8, 0.2, 0.2, 0.9, 0.05, 0.7, 0.3];

test('elastic stage 1: kept positions, nearest-anchor merges and merged values', () => {
  // Candidates [1, 9) ascending: 7(.05) 2(.1) 4(.2) 5(.2) 1(.5) 8(.7) 3(.8) 6(.9); drop the first F = 4:
  // {7, 2, 4, 5}. Anchors {1, 3, 6, 8}; prefix 0 and last 9 kept. Slots: 0->0 1->1 3->2 6->3 8->4 9->5.
  // Merges: 2 is 1 from anchor 1 and 1 from anchor 3 -> tie -> earlier anchor 1 (slot 1);
  //         4: anchor 3 at 1, anchor 6 at 2 -> 3 (slot 2); 5: 3 at 2, 6 at 1 -> 6 (slot 3);
  //         7: 6 at 1, 8 at 1 -> tie -> 6 (slot 3).
  const assign = elasticMergeAssign(SCORE, 10, 6, 1);
  assert.deepEqual(arr(assign), [0, 1, 1, 2, 2, 3, 3, 3, 4, 5]);
  // Values v[j] = 2^j, one head, headDim 1:
  //   slot1 = (2+4)/2 = 3, slot2 = (8+16)/2 = 12, slot3 = (32+64+128)/3 = 224/3, others copied.
  const v = f32([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
  const r = applyAssign(v, 1, 10, 1, assign);
  assert.equal(r.newLen, 6);
  assert.deepEqual(Array.from(r.data), [1, 3, 12, Math.fround(224 / 3), 256, 512]);
  assert.deepEqual(planSummary([assign]), { newLength: 6, merged: 4, evicted: 0, perLayerMerged: [4], perLayerEvicted: [0] });
});

test('elastic stage 1: equal scores drop the earlier position first', () => {
  // keep 7 -> F = 3: 7(.05), 2(.1), then 4 and 5 tie at .2 -> the earlier, 4, is dropped; 5 stays an anchor.
  // Anchors {1, 3, 5, 6, 8}: 2 -> tie 1|3 -> 1; 4 -> tie 3|5 -> 3; 7 -> tie 6|8 -> 6.
  const assign = elasticMergeAssign(SCORE, 10, 7, 1);
  assert.deepEqual(arr(assign), [0, 1, 1, 2, 2, 3, 4, 4, 5, 6]);
});

test('elastic stage 1: prefix and last token are never merge targets', () => {
  // len 8, s = 2, keep 5 -> F = 3 over candidates [2, 7): drop 6(.05), 2(.1), 3(.2); anchors {4, 5}.
  // 2 and 3 sit next to the prefix (1) but go to the first anchor 4; 6 sits next to the last token (7)
  // but goes to anchor 5. Slots: 0->0 1->1 4->2 5->3 7->4.
  const assign = elasticMergeAssign([5, 5, 0.1, 0.2, 0.9, 0.8, 0.05, 5], 8, 5, 2);
  assert.deepEqual(arr(assign), [0, 1, 2, 2, 2, 3, 3, 4]);
  // keep = s + 1 leaves no anchor: the dropped entries are evicted, not merged.
  assert.deepEqual(arr(elasticMergeAssign([5, 5, 1, 2, 3, 4, 5, 5], 8, 3, 2)), [0, 1, -1, -1, -1, -1, -1, 2]);
});

test('elastic released-selection (released code) differs from the fixed top-k on the same scores', () => {
  // sub = score[1..9) = [.5 .1 .8 .2 .2 .9 .05 .7]; argsort(sub) = [6 1 3 4 0 7 2 5]; F = 4.
  // Kept RANKS i with argsort[i] > 4: i = 0 (6), 5 (7), 7 (5) -> positions i + 1 = {1, 6, 8}.
  // Thrown ranks (argsort <= 4): i = 1 2 3 4 6, used WITHOUT the +1 offset: t = {1, 2, 3, 4, 6}.
  // Slots: 0->0 1->1 6->2 8->3 9->4 (5 entries: the released `>` keeps budget - 1).
  // t=1 and t=6 are kept themselves (own slot only); t=2 -> nearest anchor 1; t=3: |1-3|=2 < |6-3|=3 -> 1;
  // t=4: |6-4|=2 < |1-4|=3 -> 6. Positions 5 and 7 are neither kept nor thrown: evicted.
  const literal = releasedMergeAssign(SCORE, 10, 6, 1);
  assert.deepEqual(arr(literal), [0, 1, 1, 1, 2, -1, 2, -1, 3, 4]);
  const fixed = elasticMergeAssign(SCORE, 10, 6, 1);
  assert.notDeepEqual(arr(literal), arr(fixed));
  // The fixed version keeps the top-4 scores of [1, 9) as anchors (1 3 6 8); the literal one keeps 1 6 8
  // and loses 3 (score .8) while keeping 1 (.5) - that is what the fix is worth here.
  const policy = new ElasticPolicy({ keep: 0.6, startSize: 1, releasedSelection: true });
  assert.equal(policy.name, 'elastic-released');
  const plan = policy.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: [f32(SCORE)] });
  assert.deepEqual(arr(plan![0]), arr(literal));
});

test('elastic policy: one index set per layer, all layers the same length', () => {
  const p = new ElasticPolicy({ keep: 0.6, startSize: 1, distance: -2 });
  const other = f32([9, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]); // drops 8 7 6 5 -> all into anchor 4
  const plan = p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: [f32(SCORE), other] });
  assert.ok(plan);
  assert.deepEqual(arr(plan[0]), [0, 1, 1, 2, 2, 3, 3, 3, 4, 5]);
  assert.deepEqual(arr(plan[1]), [0, 1, 2, 3, 4, 4, 4, 4, 4, 5]);
  assert.equal(validatePlan(plan, 10, 2), 6);
  assert.equal(p.evictionIndex, 4); // 6 kept + distance -2
  assert.throws(() => p.afterPrefill({ cacheLength: 10, newEntries: 10, tokensSeen: 10, scores: null }), /needs attention scores/);
});

// ---------------------------------------------------------------- elastic stage 2

test('elastic decode: fixed P, evicted original ids over 30 steps (k = 0.5, 20-token prompt)', () => {
  const sim = new Sim(2);
  const p = new ElasticPolicy({ keep: 0.5, distance: -3 }); // startSize 4 (default)
  sim.append(20);
  // score = position: the 10 lowest of [4, 19) are 4..13, all merged into anchor 14.
  const ramp = Float32Array.from({ length: 20 }, (_, j) => j);
  sim.apply(p.afterPrefill({ cacheLength: 20, newEntries: 20, tokensSeen: 20, scores: [ramp, ramp] }));
  assert.deepEqual(sim.layers[0].map((ids) => ids.at(-1)), [0, 1, 2, 3, 14, 15, 16, 17, 18, 19]);
  assert.equal(p.evictionIndex, 7); // kept 10 + distance -3
  const evictedIds: number[] = [];
  const evictSteps: number[] = [];
  for (let step = 1; step <= 30; step++) {
    sim.append(1);
    const T = 20 + step;
    const plan = p.afterStep({ cacheLength: sim.length, tokensSeen: T, scores: null });
    const ev = sim.apply(plan);
    assert.deepEqual(ev[0], ev[1]); // same index in every layer
    for (const ids of ev[0]) {
      evictedIds.push(...ids);
      evictSteps.push(step);
    }
    assert.equal(sim.length, budgetFor(0.5, T, 5));
  }
  // Budget round(T/2) grows on odd T, so an even T is one over: evict at steps 2, 4, ..., 30.
  // Index 7 is FIFO over what follows the instruction part: 17, 18, 19 (prompt anchors), then the
  // generated tokens 20, 21, ... -> 15 evictions, ids 17..31.
  assert.deepEqual(evictSteps, Array.from({ length: 15 }, (_, i) => 2 * (i + 1)));
  assert.deepEqual(evictedIds, Array.from({ length: 15 }, (_, i) => 17 + i));
  assert.deepEqual(sim.layers[0].slice(0, 7).map((ids) => ids.at(-1)), [0, 1, 2, 3, 14, 15, 16]); // never move
});

test('elastic decode: default distance -25 clamps P to startSize', () => {
  const p = new ElasticPolicy({ keep: 0.5 });
  p.afterPrefill({ cacheLength: 20, newEntries: 20, tokensSeen: 20, scores: [new Float32Array(20)] });
  assert.equal(p.evictionIndex, 4); // max(4, 10 - 25)
  const plan = p.afterStep({ cacheLength: 12, tokensSeen: 22, scores: null });
  assert.deepEqual(arr(plan![0]), [0, 1, 2, 3, -1, 4, 5, 6, 7, 8, 9, 10]);
  assert.throws(() => new ElasticPolicy({ keep: 0.5 }).afterStep({ cacheLength: 3, tokensSeen: 3, scores: null }), /before afterPrefill/);
});

test('elastic multi-turn: a follow-up prefill compresses the whole cache to k x T and resets P', () => {
  const sim = new Sim(1);
  const p = new ElasticPolicy({ keep: 0.5, distance: -3 });
  sim.append(20);
  const ramp = (n: number) => [Float32Array.from({ length: n }, (_, j) => j)];
  sim.apply(p.afterPrefill({ cacheLength: 20, newEntries: 20, tokensSeen: 20, scores: ramp(20) }));
  for (let step = 1; step <= 6; step++) {
    sim.append(1);
    sim.apply(p.afterStep({ cacheLength: sim.length, tokensSeen: 20 + step, scores: null }));
  }
  assert.equal(sim.length, 13); // round(26 / 2)
  sim.append(8); // follow-up question: 8 entries, T = 34, budget 17, cache 21 -> F = 4
  // Cache before: ids [0 1 2 3 14 15 16 20..25 | 26..33] (17, 18, 19 were evicted at P = 7).
  // Scores = entry index, so the 4 lowest in [4, 20) are entries 4..7 (ids 14 15 16 20): entry 4 is
  // dropped too, and all four merge into the first anchor, entry 8 (id 21).
  const scores = Float32Array.from({ length: 21 }, (_, j) => j);
  const plan = p.afterPrefill({ cacheLength: 21, newEntries: 8, tokensSeen: 34, scores: [scores] });
  assert.deepEqual(planSummary(plan), { newLength: 17, merged: 4, evicted: 0, perLayerMerged: [4], perLayerEvicted: [0] });
  sim.apply(plan);
  assert.equal(sim.length, 17);
  // entry 4 already held ids 4..14 (first turn's merge); now 15, 16, 20 and the anchor 21 join it
  assert.deepEqual(sim.layers[0][4], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 21]);
  assert.equal(p.evictionIndex, 14); // 17 kept + distance -3
  sim.append(1); // T = 35: budget 18, no eviction; T = 36: budget 18, cache 19 -> evict index 14
  assert.equal(p.afterStep({ cacheLength: 18, tokensSeen: 35, scores: null }), null);
  sim.append(1);
  const idAt14 = sim.layers[0][14];
  const ev = sim.apply(p.afterStep({ cacheLength: 19, tokensSeen: 36, scores: null }));
  assert.deepEqual(ev[0], [idAt14]);
});

// ---------------------------------------------------------------- budget arithmetic, all policies

const COMPRESSING: Array<[string, (o: PolicyOptions) => CachePolicy, number]> = [
  ['elastic (paper)', (o) => createPolicy('elastic', { ...o, variant: 'paper' }), 5],
  ['h2o', (o) => createPolicy('h2o', o), 1],
  ['streaming', (o) => createPolicy('streaming', o), 5],
];

for (const [name, make, minimum] of COMPRESSING) {
  test(`${name}: cache length == budget(k, T) after prefill and after every step, across two turns`, () => {
    for (const k of [0.1, 0.2, 0.5, 0.7, 0.9]) {
      const r = rng(Math.round(k * 100));
      const layers = 3;
      const sim = new Sim(layers);
      const policy = make({ keep: k });
      const scores = (len: number) => (policy.needsScores ? randomScores(r, layers, len) : null);
      const prefill = (n: number) => {
        sim.append(n);
        sim.apply(policy.afterPrefill({ cacheLength: sim.length, newEntries: n, tokensSeen: sim.tokens, scores: scores(sim.length), numLayers: layers }));
        assert.equal(sim.length, Math.min(sim.tokens, budgetFor(k, sim.tokens, minimum)), `${name} k=${k} prefill T=${sim.tokens}`);
      };
      const decode = (steps: number) => {
        for (let s = 0; s < steps; s++) {
          sim.append(1);
          sim.apply(policy.afterStep({ cacheLength: sim.length, tokensSeen: sim.tokens, scores: scores(sim.length), numLayers: layers }));
          assert.equal(sim.length, budgetFor(k, sim.tokens, minimum), `${name} k=${k} step T=${sim.tokens}`);
        }
      };
      prefill(40);
      decode(25);
      prefill(12); // follow-up turn
      decode(25);
    }
  });
}

test('elastic released-selection keeps at most the budget (one under right after a prefill)', () => {
  const sim = new Sim(2);
  const r = rng(7);
  const p = new ElasticPolicy({ keep: 0.5, releasedSelection: true });
  sim.append(40);
  sim.apply(p.afterPrefill({ cacheLength: 40, newEntries: 40, tokensSeen: 40, scores: randomScores(r, 2, 40) }));
  assert.equal(sim.length, 19); // budget 20 - 1 (the released `>` drops F + 1)
  for (let t = 41; t <= 70; t++) {
    sim.append(1);
    sim.apply(p.afterStep({ cacheLength: sim.length, tokensSeen: t, scores: null }));
    assert.ok(sim.length <= budgetFor(0.5, t, 5) && sim.length >= budgetFor(0.5, t, 5) - 1);
  }
});

test('full: never changes the cache', () => {
  const p = createPolicy('full', { keep: 0.1 });
  assert.equal(p.needsScores, false);
  assert.equal(p.afterPrefill({ cacheLength: 100, newEntries: 100, tokensSeen: 100, scores: null }), null);
  assert.equal(p.afterStep({ cacheLength: 101, tokensSeen: 101, scores: null }), null);
  assert.throws(() => createPolicy('nope' as 'full', { keep: 0.5 }), /unknown cache policy/);
});

// ---------------------------------------------------------------- h2o

test('h2o: heavy + recent split, accumulator remapped through every plan', () => {
  const p = new H2OPolicy({ keep: 0.5 }); // heavyShare 0.5
  const sim = new Sim(1);
  const step = (row: number[]): number[] => {
    sim.append(1);
    const ev = sim.apply(p.afterStep({ cacheLength: sim.length, tokensSeen: sim.tokens, scores: [f32(row)] }));
    return ev[0].flat();
  };
  const close = (a: Float64Array, b: number[]) => {
    assert.equal(a.length, b.length);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-6, `acc[${i}] = ${x}, expected ${b[i]}`));
  };
  // Prefill 6, column sums [5 1 3 .5 2 4]; budget 3 -> heavy floor(1.5) = 1, recent 2 (ids 4, 5).
  // Among ids 0..3 evict the 3 lowest (.5, 1, 3) -> keep id 0. acc -> [5, 2, 4].
  sim.append(6);
  const ev0 = sim.apply(p.afterPrefill({ cacheLength: 6, newEntries: 6, tokensSeen: 6, scores: [f32([5, 1, 3, 0.5, 2, 4])] }));
  assert.deepEqual(ev0[0].flat().sort(), [1, 2, 3]);
  close(p.accumulated(0), [5, 2, 4]);
  // T = 7: budget 4, no eviction. acc += [.1 .5 .2 .2] -> [5.1 2.5 4.2 .2] (ids 0 4 5 6).
  assert.deepEqual(step([0.1, 0.5, 0.2, 0.2]), []);
  close(p.accumulated(0), [5.1, 2.5, 4.2, 0.2]);
  // T = 8: budget 4 (heavy 2, recent 2: ids 6 7). acc += [0 0 .3 .1 .6] -> [5.1 2.5 4.5 .3 .6];
  // lowest among ids 0 4 5 is id 4 (2.5) -> evicted; acc -> [5.1 4.5 .3 .6].
  assert.deepEqual(step([0, 0, 0.3, 0.1, 0.6]), [4]);
  close(p.accumulated(0), [5.1, 4.5, 0.3, 0.6]);
  // T = 9: budget 5, no eviction; acc += 0 -> [5.1 4.5 .3 .6 0] (ids 0 5 6 7 8).
  assert.deepEqual(step([0, 0, 0, 0, 0]), []);
  // T = 10: budget 5 (heavy 2, recent 3: ids 7 8 9). acc += [0 0 2 0 0 0] -> [5.1 4.5 2.3 .6 0 0];
  // among ids 0 5 6 the lowest is id 6 (2.3). Without remapping, slot 2 would still hold id 5's 4.5.
  assert.deepEqual(step([0, 0, 2, 0, 0, 0]), [6]);
  close(p.accumulated(0), [5.1, 4.5, 0.6, 0, 0]);
  assert.throws(() => new H2OPolicy({ keep: 0.5 }).afterPrefill({ cacheLength: 3, newEntries: 3, tokensSeen: 3, scores: null }), /needs attention scores/);
});

// ---------------------------------------------------------------- streaming

test('streaming: 4 sinks + most recent; evicts the oldest non-sink', () => {
  const p = new StreamingPolicy({ keep: 0.5 });
  const sim = new Sim(2);
  sim.append(12);
  // budget 6: sinks 0..3 + the 2 newest (10, 11)
  sim.apply(p.afterPrefill({ cacheLength: 12, newEntries: 12, tokensSeen: 12, scores: null, numLayers: 2 }));
  assert.deepEqual(sim.layers[1].flat(), [0, 1, 2, 3, 10, 11]);
  const evicted: number[] = [];
  for (let t = 13; t <= 18; t++) {
    sim.append(1);
    evicted.push(...sim.apply(p.afterStep({ cacheLength: sim.length, tokensSeen: t, scores: null }))[0].flat());
  }
  // budget 7 at T=13, 7 at 14 (evict 10), 8 at 15, 8 at 16 (evict 11), 9 at 17, 9 at 18 (evict 12)
  assert.deepEqual(evicted, [10, 11, 12]);
  assert.deepEqual(sim.layers[0].flat(), [0, 1, 2, 3, 13, 14, 15, 16, 17]);
  assert.throws(
    () => new StreamingPolicy({ keep: 0.5 }).afterPrefill({ cacheLength: 12, newEntries: 12, tokensSeen: 12, scores: null }),
    /numLayers/,
  );
});

test('validatePlan rejects malformed plans', () => {
  const ok: LayerAssign[] = [Int32Array.from([0, 0, -1, 1]), Int32Array.from([0, 1, 1, -1])];
  assert.equal(validatePlan(ok, 4), 2);
  assert.throws(() => validatePlan([Int32Array.from([0, 2, -1, 3])], 4), /slot 2/); // not dense
  assert.throws(() => validatePlan([Int32Array.from([1, 0, 2])], 3), /slot 1/); // not starting at 0 / decreasing
  assert.throws(() => validatePlan([Int32Array.from([0, 1]), Int32Array.from([0, 0])], 2), /length/); // layers differ
  assert.throws(() => validatePlan([Int32Array.from([0, 1])], 3), /entries/);
});
