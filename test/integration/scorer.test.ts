// The scoring graph (runtime/model/scorer.ts) against GroupQueryAttention's own probabilities: on the CPU, the
// positions decoder's queries and present keys fed to the scoring graph must give the importance and window rows
// the scored decoder computes in-graph (output_qk), on the same inputs, for a prefill and the decode steps after it.
// This is what lets Elastic, H2O and SnapKV run on WebGPU, whose GroupQueryAttention has no attention output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from 'onnxruntime-node';
import { ort, float16Tensor } from '../../runtime/model/ort.js';
import { f32ToF16 } from '../../runtime/util/half.js';
import { createSession } from '../../runtime/model/sessions.js';
import { readModelFolder } from '../../runtime/model/modelFolder.js';
import { AttentionScorer, buildScorerModel } from '../../runtime/model/scorer.js';
import { deriveScoredDecoder, derivePositionsDecoder } from '../../runtime/onnx/derive.js';
import { IMPORTANCE_PREFIX, WINDOW_PREFIX, WINDOW_QUERIES } from '../../runtime/onnx/importance.js';
import { queryName } from '../../runtime/onnx/queries.js';
import { zeroMassFeeds } from '../../runtime/onnx/massBias.js';
import { decodeModel } from '../../runtime/onnx/build.js';
import { lookalike } from '../helpers/lookalike.js';
import { seeded } from '../helpers/seeded.js';

const FUSED = lookalike(['--preset', 'smolvlm-256m', '--layers', '2', '--no-image-splitting', '--format', 'fused', '--dtypes', 'fp32,fp16']);
const work = mkdtempSync(join(tmpdir(), 'evlm-scorer-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));


const maxAbs = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

test('the scoring graphs (per layer and stacked) give GroupQueryAttention\'s importance and window rows (prefill of 80 tokens, then 3 steps)', async () => {
  const cfg = readModelFolder(FUSED);
  const cacheDir = join(work, 'derived');
  const scored = await deriveScoredDecoder(cfg.files.decoder, { cacheDir });
  const { path: positions, queryOutputs } = await derivePositionsDecoder(cfg.files.decoder, { cacheDir });
  assert.equal(queryOutputs, cfg.numLayers);
  const a = await createSession(scored.path, 'cpu');
  const b = await createSession(positions, 'cpu');
  const shape = { layers: cfg.numLayers, kvHeads: cfg.numKvHeads, headDim: cfg.headDim, dtype: 'float32' as const, heads: cfg.numHeads };
  const scorer = await AttentionScorer.create(shape, 'cpu');
  assert.deepEqual(b.outputNames.filter((n) => n.startsWith('attn_query.')), [queryName(0), queryName(1)]);

  const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, cfg.numKvHeads, 0, cfg.headDim]);
  let past: Record<string, Tensor> = {};
  for (let i = 0; i < cfg.numLayers; i++) past[`past_key_values.${i}.key`] = past[`past_key_values.${i}.value`] = empty();
  let len = 0;
  // More queries than the window (80 > 64) so that the window is a strict slice.
  for (const [n, seed] of [[80, 1], [1, 2], [1, 3], [1, 4]]) {
    const feeds: Record<string, Tensor> = {
      inputs_embeds: new ort.Tensor('float32', seeded(n * cfg.hiddenSize, seed, 1), [1, n, cfg.hiddenSize]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(len + n).fill(1n), [1, len + n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, j) => BigInt(len + j)), [1, n]),
      ...past,
    };
    const ref = await a.run(zeroMassFeeds(a.inputNames, feeds)); // the scored decoder takes Elastic's attn_bias.*
    const out = await b.run(feeds);
    // Both graphs: one chain per layer (a prefill's), and all layers stacked (a decode step's).
    for (const stacked of [false, true]) {
      const got = await scorer.score(out, true, stacked);
      for (let i = 0; i < cfg.numLayers; i++) {
        const imp = `${IMPORTANCE_PREFIX}${i}`;
        const win = `${WINDOW_PREFIX}${i}`;
        assert.deepEqual(got[imp].dims, ref[imp].dims, imp);
        assert.deepEqual(got[win].dims, [1, cfg.numHeads, Math.min(n, WINDOW_QUERIES), len + n], win);
        assert.deepEqual(got[win].dims, ref[win].dims, win);
        const dImp = maxAbs(got[imp].data as Float32Array, ref[imp].data as Float32Array);
        const dWin = maxAbs(got[win].data as Float32Array, ref[win].data as Float32Array);
        // Column sums reach n: relative 1e-5 of that; single probabilities to 1e-5.
        assert.ok(dImp < 1e-5 * n, `${imp} after ${len + n} tokens (stacked: ${stacked}): ${dImp}`);
        assert.ok(dWin < 1e-5, `${win} after ${len + n} tokens (stacked: ${stacked}): ${dWin}`);
      }
    }
    // Same logits: the two derivations differ only in what they output.
    assert.ok(maxAbs(ref.logits.data as Float32Array, out.logits.data as Float32Array) < 1e-4);
    past = {};
    for (let i = 0; i < cfg.numLayers; i++) {
      past[`past_key_values.${i}.key`] = out[`present.${i}.key`];
      past[`past_key_values.${i}.value`] = out[`present.${i}.value`];
    }
    len += n;
  }
  await Promise.all([a.release(), b.release(), scorer.release()]);
});

test('the scoring graph takes float16 queries and keys and sums in float32', async () => {
  const cfg = readModelFolder(FUSED, 'fp16');
  const { path: positions } = await derivePositionsDecoder(cfg.files.decoder, { cacheDir: join(work, 'derived') });
  const shape = { layers: cfg.numLayers, kvHeads: cfg.numKvHeads, headDim: cfg.headDim, dtype: 'float16' as const, heads: cfg.numHeads };
  const graph = decodeModel(buildScorerModel(shape, true)).graph!;
  assert.ok(graph.node!.some((n) => n.opType === 'Cast'), 'float16 inputs are cast to float32');
  assert.ok(graph.output!.every((o) => o.type!.tensorType!.elemType === 1), 'float32 outputs');
  const b = await createSession(positions, 'cpu');
  const scorer = await AttentionScorer.create(shape, 'cpu');
  const n = 12;
  const embedsHalf = (b.inputMetadata.find((m) => m.name === 'inputs_embeds') as { type?: string }).type === 'float16';
  const x = seeded(n * cfg.hiddenSize, 7, 1);
  const feeds: Record<string, Tensor> = {
    inputs_embeds: embedsHalf ? float16Tensor(Uint16Array.from(x, f32ToF16), [1, n, cfg.hiddenSize]) : new ort.Tensor('float32', x, [1, n, cfg.hiddenSize]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, j) => BigInt(j)), [1, n]),
  };
  for (let i = 0; i < cfg.numLayers; i++) {
    feeds[`past_key_values.${i}.key`] = feeds[`past_key_values.${i}.value`] = float16Tensor(new Uint16Array(0), [1, cfg.numKvHeads, 0, cfg.headDim]);
  }
  const out = await b.run(feeds);
  for (const stacked of [false, true]) {
    const got = await scorer.score(out, false, stacked);
    for (let i = 0; i < cfg.numLayers; i++) {
      const imp = got[`${IMPORTANCE_PREFIX}${i}`];
      assert.equal(imp.type, 'float32');
      // Each query's probabilities sum to 1, so the column sums of n queries add up to n.
      const data = imp.data as Float32Array;
      const total = data.reduce((p, q) => p + q, 0);
      assert.ok(Math.abs(total - n) < 1e-3, `layer ${i} (stacked: ${stacked}): ${total}`);
      // Causal: the last key is seen by the last query alone.
      assert.ok(data[n - 1] <= 1 + 1e-6 && data[0] > data[n - 1] / n);
      assert.equal(got[`${WINDOW_PREFIX}${i}`], undefined, 'no window rows unless asked');
    }
  }
  await Promise.all([b.release(), scorer.release()]);
});
