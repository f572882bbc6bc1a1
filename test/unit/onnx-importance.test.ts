// Attention-importance rewrite: small decoders of each kind (unfused Softmax, com.microsoft
// MultiHeadAttention, com.microsoft GroupQueryAttention) are built here, rewritten, run with
// onnxruntime-node on the CPU, and `attn_importance.{i}` is checked against a direct computation of
// softmax(Q.K^T / sqrt(d) + mask), averaged over heads and summed over the current queries.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { BOOL, F32, GraphBuilder, I32, I64, decodeModel, encodeModel, randn, rng } from '../helpers/onnx-build.js';
import { NoAttentionError, UnsupportedModelError, rewriteForImportance } from '../../runtime/onnx/importance.js';
import { deriveScoredDecoder } from '../../runtime/onnx/derive.js';
import { lastPositionLogits } from '../../runtime/onnx/lastLogits.js';
import { zeroMassFeeds } from '../../runtime/onnx/massBias.js';

let ort: typeof OrtTypes;
before(async () => {
  process.env.ORT_DISABLE_TELEMETRY = '1'; // before onnxruntime-node is loaded
  ort = await import('onnxruntime-node');
});

const TOL = 1e-5;

// ------------------------------------------------------------------------------------------------
// Test decoders

interface Dims {
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  vocab: number;
}
const DIMS: Dims = { layers: 2, heads: 4, kvHeads: 2, headDim: 8, hidden: 16, vocab: 11 };

/** Inputs of the SmolVLM layout, the position embedding, and the additive causal+padding mask [B,1,S,T]. */
function commonInputs(g: GraphBuilder, d: Dims, r: () => number, kvHeads: number) {
  g.input('inputs_embeds', F32, ['batch_size', 'sequence_length', d.hidden]);
  g.input('attention_mask', I64, ['batch_size', 'total_sequence_length']);
  g.input('position_ids', I64, ['batch_size', 'sequence_length']);
  for (let l = 0; l < d.layers; l++) {
    for (const kv of ['key', 'value']) {
      g.input(`past_key_values.${l}.${kv}`, F32, ['batch_size', kvHeads, 'past_sequence_length', d.headDim]);
    }
  }
  // x = inputs_embeds + position_ids * w_pos (uses position_ids like a real decoder would)
  const pos = g.node('Unsqueeze', [g.node('Cast', ['position_ids'], { attrs: { to: F32 } }), g.const(I64, [1], [2])]);
  const x = g.node('Add', ['inputs_embeds', g.node('Mul', [pos, g.const(F32, [d.hidden], randn(r, d.hidden, 0.05))])]);

  // mask[b, 0, s, t] = 0 where key t is visible to query s (causal, attention_mask = 1), else -1e9
  const one = g.const(I64, [], [1]);
  const T = g.node('Gather', [g.node('Shape', ['attention_mask']), one], { attrs: { axis: 0 } });
  const S = g.node('Gather', [g.node('Shape', ['inputs_embeds']), one], { attrs: { axis: 0 } });
  const qpos = g.node('Range', [g.node('Sub', [T, S]), T, one]);
  const kpos = g.node('Range', [g.const(I64, [], [0]), T, one]);
  const causal = g.node('LessOrEqual', [
    g.node('Unsqueeze', [kpos, g.const(I64, [1], [0])]),
    g.node('Unsqueeze', [qpos, g.const(I64, [1], [1])]),
  ]);
  const pad = g.node('Unsqueeze', [g.node('Cast', ['attention_mask'], { attrs: { to: BOOL } }), g.const(I64, [2], [1, 2])]);
  const mask = g.node('Where', [g.node('And', [causal, pad]), g.const(F32, [], [0]), g.const(F32, [], [-1e9])]);
  return { x, mask };
}

function lmHead(g: GraphBuilder, d: Dims, r: () => number, x: string): void {
  g.node('MatMul', [x, g.const(F32, [d.hidden, d.vocab], randn(r, d.hidden * d.vocab, 0.5))], { outputs: ['logits'] });
}

function declareOutputs(g: GraphBuilder, d: Dims, kvHeads: number, qDims: (string | number)[]) {
  g.output('logits', F32, ['batch_size', 'sequence_length', d.vocab]);
  for (let l = 0; l < d.layers; l++) {
    for (const kv of ['key', 'value']) {
      g.output(`present.${l}.${kv}`, F32, ['batch_size', kvHeads, 'total_sequence_length', d.headDim]);
    }
  }
  // Debug outputs of the test graphs: the queries and the keys each layer attends with.
  for (let l = 0; l < d.layers; l++) {
    g.output(`dbg.q.${l}`, F32, qDims);
  }
}

/**
 * (a) Unfused Llama-like attention: explicit MatMul/Softmax/MatMul per layer, past KV concatenated
 * on the sequence axis, GQA by repeating KV heads. Decoy Softmax nodes that are not attention are
 * included (one with a rank-3 value_info that feeds a MatMul, one that feeds a Mul).
 */
function buildUnfused(opts: { opset?: number; swapNames?: boolean; seed?: number } = {}): onnx.ModelProto {
  const d = DIMS;
  const r = rng(opts.seed ?? 1);
  const g = new GraphBuilder('unfused');
  const { x: x0, mask } = commonInputs(g, d, r, d.kvHeads);
  const { heads: H, kvHeads: KVH, headDim: D, hidden } = d;
  let x = x0;
  for (let l = 0; l < d.layers; l++) {
    const nameLayer = opts.swapNames ? d.layers - 1 - l : l;
    const pre = `/model/layers.${nameLayer}/self_attn`;
    const proj = (w: number, heads: number, out?: string) =>
      g.node(
        'Transpose',
        [g.node('Reshape', [g.node('MatMul', [x, g.const(F32, [hidden, w], randn(r, hidden * w, 0.5))]), g.const(I64, [4], [0, 0, heads, D])])],
        { attrs: { perm: [0, 2, 1, 3] }, ...(out ? { outputs: [out] } : {}) },
      );
    const q = proj(H * D, H, `dbg.q.${l}`);
    const k = g.node('Concat', [`past_key_values.${l}.key`, proj(KVH * D, KVH)], { attrs: { axis: 2 }, outputs: [`present.${l}.key`] });
    const v = g.node('Concat', [`past_key_values.${l}.value`, proj(KVH * D, KVH)], { attrs: { axis: 2 }, outputs: [`present.${l}.value`] });
    const repeat = (t: string) =>
      g.node('Reshape', [
        g.node('Expand', [g.node('Unsqueeze', [t, g.const(I64, [1], [2])]), g.const(I64, [5], [1, 1, H / KVH, 1, 1])]),
        g.const(I64, [4], [0, H, -1, D]),
      ]);
    const kr = repeat(k);
    const vr = repeat(v);
    const scores = g.node('MatMul', [q, g.node('Transpose', [kr], { attrs: { perm: [0, 1, 3, 2] } })]);
    const scaled = g.node('Add', [g.node('Mul', [scores, g.const(F32, [], [1 / Math.sqrt(D)])]), mask]);
    const probs = g.node('Softmax', [scaled], { attrs: { axis: -1 }, name: `${pre}/Softmax` });
    const ctx = g.node('Reshape', [
      g.node('Transpose', [g.node('MatMul', [probs, vr])], { attrs: { perm: [0, 2, 1, 3] } }),
      g.const(I64, [3], [0, 0, H * D]),
    ]);
    x = g.node('Add', [x, g.node('MatMul', [ctx, g.const(F32, [H * D, hidden], randn(r, H * D * hidden, 0.5))])]);
    // decoys: a rank-3 Softmax feeding a MatMul (value_info says rank 3), and one feeding a Mul
    const decoy = g.node('Softmax', [x], { attrs: { axis: -1 }, name: `/model/layers.${nameLayer}/mlp/Softmax` });
    g.info(decoy, F32, ['batch_size', 'sequence_length', hidden]);
    const gate = g.node('Softmax', [x], { attrs: { axis: -1 }, name: `/model/layers.${nameLayer}/gate/Softmax` });
    x = g.node('Add', [x, g.node('MatMul', [decoy, g.const(F32, [hidden, hidden], randn(r, hidden * hidden, 0.1))])]);
    x = g.node('Add', [x, g.node('Mul', [gate, x])]);
  }
  lmHead(g, d, r, x);
  declareOutputs(g, d, KVH, ['batch_size', H, 'sequence_length', D]);
  return g.model({ opset: opts.opset ?? 17 });
}

/** (b) com.microsoft MultiHeadAttention with past key/value and the additive mask as attention_bias. */
function buildMha(opts: { seed?: number; unidirectional?: boolean } = {}): onnx.ModelProto {
  const d = { ...DIMS, kvHeads: DIMS.heads }; // MHA has as many KV heads as query heads
  const r = rng(opts.seed ?? 2);
  const g = new GraphBuilder('mha');
  const { x: x0, mask } = commonInputs(g, d, r, d.kvHeads);
  const { heads: H, headDim: D, hidden } = d;
  let x = x0;
  for (let l = 0; l < d.layers; l++) {
    const lin = (w: number, out?: string) =>
      g.node('MatMul', [x, g.const(F32, [hidden, w], randn(r, hidden * w, 0.5))], out ? { outputs: [out] } : {});
    const q = lin(H * D, `dbg.q.${l}`);
    const [o] = g.nodeN(
      'MultiHeadAttention',
      [q, lin(H * D), lin(H * D), '', '', opts.unidirectional ? '' : mask, `past_key_values.${l}.key`, `past_key_values.${l}.value`],
      {
        domain: 'com.microsoft',
        name: `/model/layers.${l}/attn/MultiHeadAttention`,
        outputs: [g.fresh('mha_out'), `present.${l}.key`, `present.${l}.value`],
        attrs: { num_heads: H, ...(opts.unidirectional ? { unidirectional: 1 } : {}) },
      },
    );
    x = g.node('Add', [x, g.node('MatMul', [o, g.const(F32, [H * D, hidden], randn(r, H * D * hidden, 0.5))])]);
  }
  lmHead(g, d, r, x);
  declareOutputs(g, d, d.kvHeads, ['batch_size', 'sequence_length', H * D]);
  return g.model({ opset: 17, msDomain: true });
}

/** (c) com.microsoft GroupQueryAttention with past key/value, seqlens_k and total_sequence_length from the mask. */
function buildGqa(opts: { seed?: number; qkOutput?: number; existingQk?: boolean } = {}): onnx.ModelProto {
  const d = DIMS;
  const r = rng(opts.seed ?? 3);
  const g = new GraphBuilder('gqa');
  const { x: x0 } = commonInputs(g, d, r, d.kvHeads);
  const { heads: H, kvHeads: KVH, headDim: D, hidden } = d;
  const seqlensK = g.node('Cast', [g.node('Sub', [g.node('ReduceSum', ['attention_mask', g.const(I64, [1], [1])], { attrs: { keepdims: 0 } }), g.const(I64, [], [1])])], { attrs: { to: I32 } });
  const total = g.node('Cast', [g.node('Gather', [g.node('Shape', ['attention_mask']), g.const(I64, [], [1])], { attrs: { axis: 0 } })], { attrs: { to: I32 } });
  let x = x0;
  for (let l = 0; l < d.layers; l++) {
    const lin = (w: number, out?: string) =>
      g.node('MatMul', [x, g.const(F32, [hidden, w], randn(r, hidden * w, 0.5))], out ? { outputs: [out] } : {});
    const q = lin(H * D, `dbg.q.${l}`);
    const attrs: Record<string, number> = { num_heads: H, kv_num_heads: KVH };
    if (opts.qkOutput !== undefined) attrs.qk_output = opts.qkOutput;
    const [o] = g.nodeN(
      'GroupQueryAttention',
      [q, lin(KVH * D), lin(KVH * D), `past_key_values.${l}.key`, `past_key_values.${l}.value`, seqlensK, total],
      {
        domain: 'com.microsoft',
        name: `/model/layers.${l}/attn/GroupQueryAttention`,
        outputs: [g.fresh('gqa_out'), `present.${l}.key`, `present.${l}.value`, ...(opts.existingQk ? [g.fresh('qk')] : [])],
        attrs,
      },
    );
    x = g.node('Add', [x, g.node('MatMul', [o, g.const(F32, [H * D, hidden], randn(r, H * D * hidden, 0.5))])]);
  }
  lmHead(g, d, r, x);
  declareOutputs(g, d, KVH, ['batch_size', 'sequence_length', H * D]);
  return g.model({ opset: 17, msDomain: true });
}

// ------------------------------------------------------------------------------------------------
// Running and the direct computation

type Feeds = Record<string, OrtTypes.Tensor>;
type Results = Record<string, { dims: readonly number[]; data: Float32Array }>;

async function run(bytes: Uint8Array, feeds: Feeds): Promise<Results> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    // Unfused attention takes Elastic's mass bias (massBias.ts): zeros change nothing.
    const out = await s.run(zeroMassFeeds(s.inputNames, feeds));
    const res: Results = {};
    for (const [k, v] of Object.entries(out)) res[k] = { dims: v.dims, data: v.data as Float32Array };
    return res;
  } finally {
    await s.release();
  }
}

function makeFeeds(
  d: Dims,
  kvHeads: number,
  embeds: Float32Array,
  B: number,
  S: number,
  mask: number[][],
  positions: number[][],
  past: Results | null,
): Feeds {
  const T = mask[0].length;
  const P = T - S;
  const feeds: Feeds = {
    inputs_embeds: new ort.Tensor('float32', embeds, [B, S, d.hidden]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.flat().map(BigInt)), [B, T]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(positions.flat().map(BigInt)), [B, S]),
  };
  for (let l = 0; l < d.layers; l++) {
    for (const kv of ['key', 'value']) {
      const data = past ? past[`present.${l}.${kv}`].data : new Float32Array(0);
      feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', data, [B, kvHeads, P, d.headDim]);
    }
  }
  return feeds;
}

/**
 * importance[b, t] = sum_s mean_h softmax_t(q[b,h,s,:] . k[b,h/g,t,:] / sqrt(D) masked), computed in
 * float64. `qBSHD` says whether q is [B,S,H*D] (else [B,H,S,D]); k is [B,KVH,T,D]. A query row with no
 * visible key is uniform (what a finite additive mask gives).
 */
function reference(
  q: Float32Array,
  qBSHD: boolean,
  k: Float32Array,
  mask: number[][],
  B: number,
  H: number,
  KVH: number,
  S: number,
  D: number,
): Float64Array {
  const T = mask[0].length;
  const P = T - S;
  const out = new Float64Array(B * T);
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / (H / KVH));
      for (let s = 0; s < S; s++) {
        const logits = new Float64Array(T);
        const visible: boolean[] = [];
        for (let t = 0; t < T; t++) {
          let dot = 0;
          for (let i = 0; i < D; i++) {
            const qv = qBSHD ? q[((b * S + s) * H + h) * D + i] : q[((b * H + h) * S + s) * D + i];
            dot += qv * k[((b * KVH + kh) * T + t) * D + i];
          }
          logits[t] = dot * scale;
          visible.push(t <= P + s && mask[b][t] === 1);
        }
        const any = visible.some(Boolean);
        let max = -Infinity;
        for (let t = 0; t < T; t++) if (!any || visible[t]) max = Math.max(max, any ? logits[t] : 0);
        const e = new Float64Array(T);
        let sum = 0;
        for (let t = 0; t < T; t++) {
          e[t] = !any ? 1 : visible[t] ? Math.exp(logits[t] - max) : 0;
          sum += e[t];
        }
        for (let t = 0; t < T; t++) out[b * T + t] += e[t] / sum / H;
      }
    }
  }
  return out;
}

/** The last `keep` of S rows per batch entry of a [B, S, V] tensor (default the last one). */
function lastRows(data: ArrayLike<number>, B: number, S: number, keep = 1): Float32Array {
  const V = data.length / (B * S);
  const out = new Float32Array(B * keep * V);
  for (let b = 0; b < B; b++) for (let i = 0; i < keep * V; i++) out[b * keep * V + i] = data[(b * S + S - keep) * V + i];
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  assert.ok(worst <= tol, `${what}: max abs error ${worst} at ${at} (got ${actual[at]}, want ${expected[at]})`);
}

interface Scenario {
  name: string;
  B: number;
  S: number;
  mask: number[][];
  positions: number[][];
}

/**
 * Runs the original and the derived model on a prefill, then a decode step fed with the prefill's
 * present outputs; checks importance against the reference and the original outputs unchanged.
 */
async function checkDecoder(
  original: onnx.ModelProto,
  d: Dims,
  kvHeads: number,
  qBSHD: boolean,
  expectKind: string,
  prefill: Scenario,
): Promise<void> {
  const origBytes = encodeModel(original);
  const derived = rewriteForImportance(decodeModel(origBytes));
  assert.equal(derived.kind, expectKind);
  assert.equal(derived.layers, d.layers);
  assert.deepEqual(derived.outputNames, Array.from({ length: d.layers }, (_, i) => `attn_importance.${i}`));
  const derivedBytes = encodeModel(derived.model);

  const r = rng(99);
  const { B } = prefill;
  const step: Scenario = {
    name: 'decode',
    B,
    S: 1,
    mask: prefill.mask.map((row) => [...row, 1]),
    positions: prefill.positions.map((row) => [row[row.length - 1] + 1]),
  };
  let past: Results | null = null;
  for (const sc of [prefill, step]) {
    const embeds = randn(r, B * sc.S * d.hidden, 1);
    const feeds = makeFeeds(d, kvHeads, embeds, B, sc.S, sc.mask, sc.positions, past);
    const want = await run(origBytes, feeds);
    const got = await run(derivedBytes, feeds);
    for (const [name, v] of Object.entries(want)) {
      // The derived decoder's logits are the last position's only (lastLogits.ts): [B, 1, V].
      const expected = name === 'logits' ? lastRows(v.data, B, sc.S) : v.data;
      if (name === 'logits') assert.deepEqual([...got[name].dims], [B, 1, d.vocab], `${sc.name}: logits of the last position only`);
      // GQA with qk_output takes another kernel path: float rounding differs (~1e-6 on these logits)
      assertClose(got[name].data, expected, TOL, `${sc.name}: original output ${name}`);
    }
    const T = sc.mask[0].length;
    // new.{l}.key|value: the run's own entries, the last S of each head's present rows (newEntries.ts). The test
    // graphs' presents are a Concat (unfused) or GroupQueryAttention's; MultiHeadAttention's are not exposed.
    assert.equal(`new.0.key` in got, expectKind !== 'mha', `${sc.name}: new.* outputs for the ${expectKind} kind`);
    for (let l = 0; l < d.layers && expectKind !== 'mha'; l++) {
      for (const kv of ['key', 'value']) {
        const present = got[`present.${l}.${kv}`];
        const fresh = got[`new.${l}.${kv}`];
        assert.deepEqual([...fresh.dims], [B, kvHeads, sc.S, d.headDim], `${sc.name}: dims of new.${l}.${kv}`);
        assertClose(fresh.data, lastRows(present.data, B * kvHeads, T, sc.S), 0, `${sc.name}: new.${l}.${kv}`);
      }
    }
    for (let l = 0; l < d.layers; l++) {
      const imp = got[`attn_importance.${l}`];
      assert.deepEqual([...imp.dims], [B, T], `${sc.name}: dims of attn_importance.${l}`);
      assert.ok(imp.data instanceof Float32Array, 'float32 output');
      const ref = reference(got[`dbg.q.${l}`].data, qBSHD, got[`present.${l}.key`].data, sc.mask, B, d.heads, kvHeads, sc.S, d.headDim);
      assertClose(imp.data, ref, TOL, `${sc.name}: attn_importance.${l}`);
      // column sums over S queries of probability rows: total mass S per batch entry
      for (let b = 0; b < B; b++) {
        const mass = imp.data.slice(b * T, (b + 1) * T).reduce((a, v) => a + v, 0);
        assert.ok(Math.abs(mass - sc.S) < 1e-4, `${sc.name}: mass ${mass} != ${sc.S}`);
      }
    }
    past = got;
  }
}

const leftPadded: Scenario = {
  name: 'prefill',
  B: 2,
  S: 5,
  mask: [
    [1, 1, 1, 1, 1],
    [0, 0, 1, 1, 1],
  ],
  positions: [
    [0, 1, 2, 3, 4],
    [1, 1, 0, 1, 2],
  ],
};
const unpadded: Scenario = {
  name: 'prefill',
  B: 2,
  S: 5,
  mask: [
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1],
  ],
  positions: [
    [0, 1, 2, 3, 4],
    [0, 1, 2, 3, 4],
  ],
};

// ------------------------------------------------------------------------------------------------

describe('rewriteForImportance: unfused Softmax attention', () => {
  it('opset 17 (ReduceMean axes attribute, ReduceSum axes input): prefill with left padding, then a decode step', async () => {
    await checkDecoder(buildUnfused({ opset: 17 }), DIMS, DIMS.kvHeads, false, 'softmax', leftPadded);
  });

  it('opset 18 (ReduceMean and Unsqueeze take axes as inputs)', async () => {
    const m = rewriteForImportance(buildUnfused({ opset: 18 })).model;
    const added = m.graph!.node!.filter((n) => /^attn_importance\//.test(n.name ?? ''));
    const reduce = added.filter((n) => n.opType === 'ReduceMean' || n.opType === 'ReduceSum');
    assert.deepEqual(reduce.map((n) => n.opType), ['ReduceMean', 'ReduceMean'], 'one head mean per layer; the query sum is a MatMul');
    for (const n of [...reduce, ...added.filter((x) => x.opType === 'Unsqueeze')]) assert.equal(n.input!.length, 2, `${n.opType} takes axes as an input`);
    await checkDecoder(buildUnfused({ opset: 18 }), DIMS, DIMS.kvHeads, false, 'softmax', leftPadded);
  });

  it('maps Softmax nodes to layers by the present outputs they read, even when node names disagree', async () => {
    await checkDecoder(buildUnfused({ swapNames: true }), DIMS, DIMS.kvHeads, false, 'softmax', unpadded);
  });

  it('without present outputs, maps by layer names, then by topological order', () => {
    const layerOfSoftmax = (m: onnx.ModelProto) => {
      const res = rewriteForImportance(m);
      const nodes = res.model.graph!.node!;
      const attn = nodes.filter((n) => n.opType === 'Softmax' && /self_attn|^$/.test(n.name ?? '') && !/mlp|gate/.test(n.name ?? ''));
      return attn.map((sm) => {
        const cast = nodes.find((n) => n.opType === 'Cast' && n.input![0] === sm.output![0])!;
        return Number(/^attn_importance\/(\d+)\//.exec(cast.name!)![1]);
      });
    };
    const unpresent = (m: onnx.ModelProto) => {
      const rename = (t: string) => t.replace(/^present\./, 'kv.');
      for (const o of m.graph!.output!) o.name = rename(o.name!);
      for (const n of m.graph!.node!) n.output = n.output!.map(rename);
      return m;
    };
    // names say layers.1 for the first attention and layers.0 for the second: names decide
    assert.deepEqual(layerOfSoftmax(unpresent(buildUnfused({ swapNames: true }))), [1, 0]);
    // no names either: topological order
    const anon = unpresent(buildUnfused({ swapNames: true }));
    for (const n of anon.graph!.node!) if (/self_attn/.test(n.name ?? '')) n.name = '';
    assert.deepEqual(layerOfSoftmax(anon), [0, 1]);
  });

  it('ignores Softmax nodes that are not rank-4 attention', () => {
    const res = rewriteForImportance(buildUnfused());
    const softmaxes = res.model.graph!.node!.filter((n) => n.opType === 'Softmax');
    assert.equal(softmaxes.length, 3 * DIMS.layers, 'no Softmax added for the unfused kind');
    assert.equal(res.layers, DIMS.layers);
  });

  it('opset 11 graph: reductions use the axes attribute', async () => {
    // scores [B,H,S,T] -> Softmax(axis 3) -> MatMul with v; present.0.key from the same inputs
    const g = new GraphBuilder('old');
    g.input('scores', F32, [1, 2, 3, 4]);
    g.input('v', F32, [1, 2, 4, 2]);
    const p = g.node('Softmax', ['scores'], { attrs: { axis: 3 } });
    g.node('MatMul', [p, 'v'], { outputs: ['out'] });
    g.node('Identity', ['v'], { outputs: ['present.0.key'] });
    g.output('out', F32, [1, 2, 3, 2]);
    g.output('present.0.key', F32, [1, 2, 4, 2]);
    const res = rewriteForImportance(g.model({ opset: 11, irVersion: 6 }));
    // the queries are summed by a MatMul with a row of ones, then heads (axis 1, with the size-1 query axis 2) averaged
    const nodes = res.model.graph!.node!;
    const reduces = nodes.filter((x) => (x.opType ?? '').startsWith('Reduce'));
    assert.deepEqual(reduces.map((n) => n.opType), ['ReduceMean']);
    assert.equal(reduces[0].input!.length, 1);
    assert.deepEqual(reduces[0].attribute!.find((a) => a.name === 'axes')!.ints!.map(Number), [1, 2]);
    const unsq = nodes.find((x) => x.opType === 'Unsqueeze' && !x.input![0].startsWith('attn_bias'))!;
    assert.equal(unsq.input!.length, 1);
    assert.deepEqual(unsq.attribute!.find((a) => a.name === 'axes')!.ints!.map(Number), [0]);
    // the mass bias ([B, T] -> [B, 1, 1, T]) takes the axes attribute too
    const bias = nodes.find((x) => x.opType === 'Unsqueeze' && x.input![0] === 'attn_bias.0')!;
    assert.deepEqual(bias.attribute!.find((a) => a.name === 'axes')!.ints!.map(Number), [1, 2]);
    const scores = randn(rng(5), 24, 3);
    const out = await run(encodeModel(res.model), {
      scores: new ort.Tensor('float32', scores, [1, 2, 3, 4]),
      v: new ort.Tensor('float32', new Float32Array(16), [1, 2, 4, 2]),
      'attn_bias.0': new ort.Tensor('float32', new Float32Array(4), [1, 4]),
    });
    const want = new Float64Array(4);
    for (let h = 0; h < 2; h++) {
      for (let s = 0; s < 3; s++) {
        const row = Array.from(scores.slice((h * 3 + s) * 4, (h * 3 + s + 1) * 4));
        const m = Math.max(...row);
        const e = row.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((x, t) => (want[t] += x / z / 2));
      }
    }
    assertClose(out['attn_importance.0'].data, want, TOL, 'opset 11 importance');
  });
});

describe('rewriteForImportance: com.microsoft MultiHeadAttention', () => {
  it('adds the qk output, a Softmax and the reductions: prefill then a decode step', async () => {
    const res = rewriteForImportance(buildMha());
    const mha = res.model.graph!.node!.filter((n) => n.opType === 'MultiHeadAttention');
    for (const n of mha) assert.equal(n.output!.length, 4);
    await checkDecoder(buildMha(), { ...DIMS, kvHeads: DIMS.heads }, DIMS.heads, true, 'mha', unpadded);
  });

  it('causal masking by unidirectional=1 (no attention_bias) is reflected in qk', async () => {
    await checkDecoder(buildMha({ unidirectional: true, seed: 4 }), { ...DIMS, kvHeads: DIMS.heads }, DIMS.heads, true, 'mha', unpadded);
  });
});

describe('rewriteForImportance: com.microsoft GroupQueryAttention', () => {
  it('sets qk_output=2 and adds output_qk: prefill then a decode step', async () => {
    const res = rewriteForImportance(buildGqa());
    for (const n of res.model.graph!.node!.filter((x) => x.opType === 'GroupQueryAttention')) {
      assert.equal(n.output!.length, 4);
      assert.equal(Number(n.attribute!.find((a) => a.name === 'qk_output')!.i), 2);
    }
    await checkDecoder(buildGqa(), DIMS, DIMS.kvHeads, true, 'gqa', unpadded);
  });

  it('switches an unused output_qk from qk_output=1 (scores, masked positions at 0) to probabilities', async () => {
    const res = rewriteForImportance(buildGqa({ qkOutput: 1, existingQk: true, seed: 8 }));
    assert.equal(res.model.graph!.node!.filter((n) => n.opType === 'Softmax').length, 0);
    await checkDecoder(buildGqa({ qkOutput: 1, existingQk: true, seed: 8 }), DIMS, DIMS.kvHeads, true, 'gqa', unpadded);
  });

  it('replaces an existing qk_output=0 attribute', async () => {
    await checkDecoder(buildGqa({ qkOutput: 0, seed: 7 }), DIMS, DIMS.kvHeads, true, 'gqa', unpadded);
  });
});

describe('rewriteForImportance: where the reductions sit', () => {
  it("lists them after the decoder's own nodes, last layer first, so onnxruntime's walk back from the leaves runs each right after its attention", () => {
    const src = buildUnfused({ opset: 17 });
    const own = src.graph!.node!.length;
    const nodes = rewriteForImportance(src).model.graph!.node!;
    const layerOfNode = (n: onnx.INodeProto) => Number(/^attn_importance\/(\d+)\//.exec(n.name ?? '')?.[1] ?? NaN);
    const tail = nodes.slice(nodes.length - nodes.filter((n) => !Number.isNaN(layerOfNode(n))).length);
    assert.ok(tail.every((n) => !Number.isNaN(layerOfNode(n))), 'every per-layer reduction node is in the tail');
    assert.deepEqual([...new Set(tail.map(layerOfNode))], [1, 0], 'layer 1 first, layer 0 last');
    assert.ok(nodes.length > own, 'nodes were added');
  });
});

describe('lastPositionLogits', () => {
  it('the LM head reads the last position only, through a Cast to float32; a Gemm head is left alone', async () => {
    const r = rng(5);
    const g = new GraphBuilder('head');
    g.input('inputs_embeds', F32, ['batch_size', 'sequence_length', 4]);
    const w = g.const(F32, [4, 3], randn(r, 12, 1));
    g.node('Cast', [g.node('MatMul', ['inputs_embeds', w])], { attrs: { to: F32 }, outputs: ['logits'] });
    g.output('logits', F32, ['batch_size', 'sequence_length', 3]);
    const model = g.model();
    const before = encodeModel(model);
    assert.equal(lastPositionLogits(model), true);
    const x = randn(r, 2 * 5 * 4, 1);
    const feeds = () => ({ inputs_embeds: new ort.Tensor('float32', Float32Array.from(x), [2, 5, 4]) });
    const want = (await run(before, feeds())).logits;
    const got = (await run(encodeModel(model), feeds())).logits;
    assert.deepEqual([...got.dims], [2, 1, 3]);
    assertClose(got.data, lastRows(want.data, 2, 5), 1e-6, 'last rows');

    const gemm = new GraphBuilder('gemm');
    gemm.input('h', F32, [2, 4]);
    gemm.node('Gemm', ['h', gemm.const(F32, [4, 3], randn(r, 12, 1))], { outputs: ['logits'] });
    gemm.output('logits', F32, [2, 3]);
    assert.equal(lastPositionLogits(gemm.model()), false);
  });
});

describe('rewriteForImportance: errors', () => {
  it('a graph without attention gives a clear NoAttentionError', () => {
    const g = new GraphBuilder('mlp');
    g.input('x', F32, [1, 4]);
    g.node('Softmax', [g.node('MatMul', ['x', g.const(F32, [4, 4], new Float32Array(16))])], { outputs: ['y'] });
    g.output('y', F32, [1, 4]);
    assert.throws(
      () => rewriteForImportance(g.model(), { source: 'mlp.onnx' }),
      (e: unknown) => e instanceof NoAttentionError && /^no attention found in mlp\.onnx: /.test(e.message),
    );
  });

  it('external data is reported as not supported yet', () => {
    const m = buildUnfused();
    const w = m.graph!.initializer![0];
    w.rawData = new Uint8Array(0);
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.externalData = [{ key: 'location', value: 'weights.bin' }];
    assert.throws(() => rewriteForImportance(m), (e: unknown) => e instanceof UnsupportedModelError && /not supported yet/.test(e.message));
  });
});

for (const isolate of [false, true]) describe(`deriveScoredDecoder${isolate ? ' in a child process' : ''}`, () => {
  it('writes the derived model once into the cache folder and reuses it; the model folder is untouched', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'evlm-derive-'));
    try {
      const modelDir = path.join(root, 'model');
      const cacheDir = path.join(root, 'cache');
      fs.mkdirSync(modelDir);
      const src = path.join(modelDir, 'decoder_model_merged.onnx');
      const bytes = encodeModel(buildUnfused());
      fs.writeFileSync(src, bytes);
      const srcStat = fs.statSync(src);

      const lines: string[] = [];
      const first = await deriveScoredDecoder(src, { cacheDir, isolate, log: (l) => lines.push(l) });
      assert.equal(lines.some((l) => l.includes('in a child process')), isolate, 'the rewrite ran in a child process when asked');
      assert.equal(first.cached, false);
      assert.equal(first.kind, 'softmax');
      assert.equal(first.layers, 2);
      assert.deepEqual(first.outputNames, ['attn_importance.0', 'attn_importance.1']);
      assert.ok(first.path.startsWith(cacheDir + path.sep));
      const mtime = fs.statSync(first.path).mtimeMs;

      await new Promise((res) => setTimeout(res, 20));
      const second = await deriveScoredDecoder(src, { cacheDir, isolate, log: (l) => lines.push(l) });
      assert.equal(lines.length, isolate ? 1 : 0, 'a cache hit starts no child');
      assert.equal(second.cached, true);
      assert.equal(second.path, first.path);
      assert.equal(fs.statSync(first.path).mtimeMs, mtime, 'not rewritten');
      assert.deepEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.tmp')), []);

      // the derived file loads and has the outputs
      const s = await ort.InferenceSession.create(first.path, { executionProviders: ['cpu'] });
      assert.ok(s.outputNames.includes('attn_importance.1'));
      await s.release();

      // source folder unchanged
      assert.deepEqual(fs.readdirSync(modelDir), ['decoder_model_merged.onnx']);
      assert.equal(fs.statSync(src).mtimeMs, srcStat.mtimeMs);
      assert.ok(fs.readFileSync(src).equals(Buffer.from(bytes)), 'source bytes unchanged');

      // a changed source gets a new derivation
      const other = path.join(modelDir, 'other.onnx');
      fs.writeFileSync(other, encodeModel(buildUnfused({ seed: 42 })));
      const third = await deriveScoredDecoder(other, { cacheDir, isolate });
      assert.equal(third.cached, false);
      assert.notEqual(third.path, first.path);
      fs.rmSync(other);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('rejects with "no attention found in <file>" and leaves no model file behind', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'evlm-derive-'));
    try {
      const g = new GraphBuilder('embed');
      g.input('input_ids', I64, [1, 3]);
      g.node('Gather', [g.const(F32, [5, 2], new Float32Array(10)), 'input_ids'], { outputs: ['inputs_embeds'] });
      g.output('inputs_embeds', F32, [1, 3, 2]);
      const src = path.join(root, 'embed_tokens.onnx');
      fs.writeFileSync(src, encodeModel(g.model()));
      const cacheDir = path.join(root, 'cache');
      for (let i = 0; i < 2; i++) {
        await assert.rejects(deriveScoredDecoder(src, { cacheDir, isolate }), (e: unknown) => {
          return e instanceof NoAttentionError && e.message.startsWith(`no attention found in ${src}: `);
        });
      }
      assert.deepEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.onnx') || f.endsWith('.tmp')), []);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
