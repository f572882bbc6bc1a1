// The attention-mass input of the derived decoders (runtime/onnx/massBias.ts), unfused and GroupQueryAttention,
// against an identity that needs no reference implementation: softmax attention over a cache holding one entry twice equals attention over the cache
// holding it once with log(2) added to its logit. So the next-token logits of a run on [e0 .. ej, ej, .. en] must
// equal those of a run on [e0 .. en] with attn_bias = log 2 at j, and differ from those with no bias.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from 'onnxruntime-node';
import { ort } from '../../runtime/model/ort.js';
import { createSession } from '../../runtime/model/sessions.js';
import { readModelFolder } from '../../runtime/model/modelFolder.js';
import { deriveScoredDecoder } from '../../runtime/onnx/derive.js';
import { MASS_BIAS_PREFIX, massBiasName, takesMassBias } from '../../runtime/onnx/massBias.js';
import { CpuKvStore } from '../../runtime/cache/store.js';
import { lookalike } from '../helpers/lookalike.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seeded } from '../helpers/seeded.js';

const MODEL = 'models/default';
const FUSED = lookalike(['--preset', 'smolvlm-256m', '--layers', '2', '--no-image-splitting', '--format', 'fused', '--dtypes', 'fp32,fp16']);
const work = mkdtempSync(join(tmpdir(), 'evlm-massbias-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));


const i64 = (a: number[]) => new ort.Tensor('int64', BigInt64Array.from(a, BigInt), [1, a.length]);
const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/** The identity on the scored decoder derived from `modelDir` (cfg-sized random inputs, a 9-token prefill). */
async function duplicateEqualsLog2(modelDir: string, kind: string): Promise<void> {
  const cfg = readModelFolder(modelDir, '');
  const d = await deriveScoredDecoder(cfg.files.decoder, { cacheDir: work });
  assert.equal(d.kind, kind);
  assert.ok(takesMassBias(d.kind));
  const sess = await createSession(d.path, 'cpu');
  const L = cfg.numLayers;
  assert.deepEqual(sess.inputNames.filter((n) => n.startsWith(MASS_BIAS_PREFIX)), Array.from({ length: L }, (_, i) => massBiasName(i)));
  const H = cfg.numKvHeads;
  const D = cfg.headDim;
  // A prefill of 9 tokens makes a real cache; entry 4 is then duplicated by hand.
  const T = 9;
  const embeds = new ort.Tensor('float32', seeded(T * cfg.hiddenSize, 7, 0.5), [1, T, cfg.hiddenSize]);
  const zeros = (n: number) => Object.fromEntries(Array.from({ length: L }, (_, i) => [massBiasName(i), new ort.Tensor('float32', new Float32Array(n), [1, n])]));
  const empty: Record<string, Tensor> = {};
  for (let i = 0; i < L; i++) for (const kv of ['key', 'value']) empty[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, H, 0, D]);
  const pre = await sess.run({ inputs_embeds: embeds, attention_mask: i64(Array(T).fill(1)), position_ids: i64([...Array(T).keys()]), ...empty, ...zeros(T) });
  const j = 4;
  const dup = (t: Tensor): Tensor => {
    const src = t.data as Float32Array;
    const out = new Float32Array(H * (T + 1) * D);
    for (let h = 0; h < H; h++) {
      const row = src.subarray(h * T * D, (h + 1) * T * D);
      out.set(row.subarray(0, (j + 1) * D), h * (T + 1) * D);
      out.set(row.subarray(j * D), h * (T + 1) * D + (j + 1) * D);
    }
    return new ort.Tensor('float32', out, [1, H, T + 1, D]);
  };
  const past = (f: (t: Tensor) => Tensor) => Object.fromEntries(Array.from({ length: L }, (_, i) => ['key', 'value'].map((kv) => [`past_key_values.${i}.${kv}`, f(pre[`present.${i}.${kv}`])])).flat());
  const step = new ort.Tensor('float32', seeded(cfg.hiddenSize, 11, 0.5), [1, 1, cfg.hiddenSize]);
  // the step sits at its true position T either way (the derived decoders take position_ids)
  const run = async (n: number, pastFeeds: Record<string, Tensor>, bias: Record<string, Tensor>) =>
    (await sess.run({ inputs_embeds: step, attention_mask: i64(Array(n + 1).fill(1)), position_ids: i64([T]), ...pastFeeds, ...bias })).logits.data as Float32Array;
  const twice = await run(T + 1, past(dup), zeros(T + 2));
  const biased = Object.fromEntries(Array.from({ length: L }, (_, i) => {
    const b = new Float32Array(T + 1);
    b[j] = Math.log(2);
    return [massBiasName(i), new ort.Tensor('float32', b, [1, T + 1])];
  }));
  const once = await run(T, past((t) => t), biased);
  const plain = await run(T, past((t) => t), zeros(T + 1));
  const last = (x: Float32Array) => x.subarray(x.length - cfg.vocabSize);
  const scale = last(twice).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  assert.ok(maxAbs(last(twice), last(once)) < 1e-4 * Math.max(1, scale), `${kind}: duplicate vs log 2 bias: ${maxAbs(last(twice), last(once))} (logits up to ${scale})`);
  assert.ok(maxAbs(last(twice), last(plain)) > 1e-3 * Math.max(1, scale), `${kind}: the bias must matter: without it the logits differ`);
  await sess.release();
}

test('attn_bias = log 2 on an entry equals holding that entry twice: unfused attention (the embedded model)', async () => {
  await duplicateEqualsLog2(MODEL, 'softmax');
});

test('the same for GroupQueryAttention (a fused SmolVLM-256M look-alike, 2 layers): its attention_bias input', async () => {
  await duplicateEqualsLog2(FUSED, 'gqa');
});

test('the CPU store with mass counts merged entries, weighs later merges by them and feeds log(count)', () => {
  const store = new CpuKvStore({ layers: 1, kvHeads: 1, headDim: 2, dtype: 'float32' }, { mass: true });
  const t = (a: number[]) => new ort.Tensor('float32', Float32Array.from(a), [1, 1, a.length / 2, 2]);
  store.adopt({ 'present.0.key': t([1, 2, 3, 4, 5, 6, 7, 8]), 'present.0.value': t([1, 2, 3, 4, 5, 6, 7, 8]) });
  // entries 0 and 3 merge into slot 1 (an unordered plan), entry 2 goes
  return store.apply([Int32Array.from([1, 0, -1, 1])]).then(async () => {
    assert.deepEqual([...store.keysOf(0)], [3, 4, 4, 5]);
    assert.deepEqual([...store.countsOf(0)!], [1, 2]);
    const f = store.massFeeds(1)[massBiasName(0)];
    assert.deepEqual(f.dims, [1, 3]);
    assert.deepEqual([...(f.data as Float32Array)].map((x) => +x.toFixed(6)), [0, +Math.log(2).toFixed(6), 0]);
    // a decode step appends an entry: it counts 1 (bias 0), the merged one still 2
    store.adopt({ 'present.0.key': t([3, 4, 4, 5, 9, 9]), 'present.0.value': t([3, 4, 4, 5, 9, 9]) });
    assert.deepEqual([...store.countsOf(0)!], [1, 2, 1]);
    assert.deepEqual([...(store.massFeeds(0)[massBiasName(0)].data as Float32Array)].map((x) => +x.toFixed(6)), [0, +Math.log(2).toFixed(6), 0]);
    await store.apply([Int32Array.from([0, 1, -1])]);
    // the next merge weighs slot 1 (two entries) twice: (1 x [3, 4] + 2 x [4, 5]) / 3
    await store.apply([Int32Array.from([0, 0])]);
    assert.deepEqual([...store.keysOf(0)].map((x) => +x.toFixed(5)), [3.66667, 4.66667]);
    assert.deepEqual([...store.countsOf(0)!], [3]);
    // without mass: plain means, no counts, zero biases
    const plain = new CpuKvStore({ layers: 1, kvHeads: 1, headDim: 2, dtype: 'float32' });
    plain.adopt({ 'present.0.key': t([1, 2, 3, 4, 5, 6]), 'present.0.value': t([1, 2, 3, 4, 5, 6]) });
    await plain.apply([Int32Array.from([0, 0, 1])]);
    assert.equal(plain.countsOf(0), null);
    assert.deepEqual([...(plain.massFeeds(0)[massBiasName(0)].data as Float32Array)], [0, 0]);
  });
});
