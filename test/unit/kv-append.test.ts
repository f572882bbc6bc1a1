// CpuKvStore fed the decoder's new.* entries (appended in the store's own buffers, runtime/onnx/newEntries.ts) must
// hold exactly what it holds when fed the present.* outputs (past and new entries concatenated by the decoder),
// through growth of its buffers, in-place appends and compactions, in float32 and float16.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ort, float16Tensor, type Tensor } from '../../runtime/model/ort.js';
import { CpuKvStore, pastName, presentName, type KvDtype } from '../../runtime/cache/store.js';
import { decoderFetches, newEntriesName } from '../../runtime/onnx/newEntries.js';

const L = 2;
const H = 3;
const D = 4;

function tensorOf(dtype: KvDtype, data: number[], n: number) {
  const dims = [1, H, n, D];
  return dtype === 'float16' ? float16Tensor(Uint16Array.from(data), dims) : new ort.Tensor('float32', Float32Array.from(data), dims);
}

/** [1, H, a + b, D] from [1, H, a, D] and [1, H, b, D]: what the decoder's present output is. */
function concat(past: ArrayLike<number>, a: number, fresh: number[], b: number): number[] {
  const out: number[] = [];
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < a * D; i++) out.push(past[h * a * D + i]);
    for (let i = 0; i < b * D; i++) out.push(fresh[h * b * D + i]);
  }
  return out;
}

async function check(dtype: KvDtype) {
  const shape = { layers: L, kvHeads: H, headDim: D, dtype };
  const byNew = new CpuKvStore(shape);
  const byPresent = new CpuKvStore(shape);
  let value = 1;
  let steps = 0;
  // A prefill of 7, then single entries; a compaction to 5 entries at run 80 (the last 5 kept, in order), after the buffers grew twice.
  const runs = [7, ...Array(95).fill(1)];
  for (const n of runs) {
    const a = byPresent.length;
    const newOut: Record<string, Tensor> = {};
    const presentOut: Record<string, Tensor> = {};
    const feeds = byPresent.feeds();
    for (let l = 0; l < L; l++) {
      for (const kv of ['key', 'value'] as const) {
        const fresh = Array.from({ length: H * n * D }, () => value++ % 60000);
        newOut[newEntriesName(l, kv)] = tensorOf(dtype, fresh, n);
        presentOut[presentName(l, kv)] = tensorOf(dtype, concat(feeds[pastName(l, kv)].data as ArrayLike<number>, a, fresh, n), a + n);
      }
    }
    byNew.adopt(newOut);
    byPresent.adopt(presentOut);
    if (++steps % 80 === 0) {
      const len = byNew.length;
      const plan = Array.from({ length: L }, () => Int32Array.from({ length: len }, (_, i) => (i >= len - 5 ? i - (len - 5) : -1)));
      await byNew.apply(plan);
      await byPresent.apply(plan);
    }
    assert.equal(byNew.length, byPresent.length);
    const got = byNew.feeds();
    const want = byPresent.feeds();
    for (const name of Object.keys(want)) {
      assert.deepEqual([...got[name].dims], [...want[name].dims], `${name} dims after ${steps} runs`);
      assert.equal(got[name].type, dtype, `${name} type`);
      assert.deepEqual(Array.from(got[name].data as ArrayLike<number>), Array.from(want[name].data as ArrayLike<number>), `${name} after ${steps} runs`);
    }
  }
  assert.equal(byNew.length, 21, 'the compaction to 5 at run 80, then 16 more entries');
}

describe('CpuKvStore: appended new entries equal adopted presents', () => {
  it('float32', async () => check('float32'));
  it('float16', async () => check('float16'));
});

it('decoderFetches: the CPU skips the presents where new entries exist; no provider fetches the scoring graph\'s queries', () => {
  const outs = ['logits', 'present.0.key', 'present.0.value', 'new.0.key', 'new.0.value', 'attn_importance.0'];
  assert.deepEqual(decoderFetches(outs, 'cpu'), ['logits', 'new.0.key', 'new.0.value', 'attn_importance.0']);
  assert.equal(decoderFetches(outs, 'webgpu'), null, 'a GPU fetches everything (the presents stay on the device)');
  assert.equal(decoderFetches(['logits', 'present.0.key', 'present.0.value'], 'cpu'), null, 'no new entries: the presents are the cache');
  const gpu = ['logits', 'present.0.key', 'present.0.value', 'attn_query.0'];
  assert.deepEqual(decoderFetches(gpu, 'webgpu'), ['logits', 'present.0.key', 'present.0.value']);
});
