// writeModelFile (runtime/onnx/writeModel.ts) writes a model initializer by initializer: the file must parse back to
// the same model and run as the one-buffer encoding does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { F32, GraphBuilder, decodeModel, encodeModel, randn, rng } from '../helpers/onnx-build.js';
import { writeModelFile } from '../../runtime/onnx/writeModel.js';

function model() {
  const r = rng(7);
  const g = new GraphBuilder('two-matmuls');
  g.input('x', F32, [1, 300]);
  // 300 x 300 floats = 360,000 bytes: a three-byte length prefix; the bias is one byte's worth.
  g.init('w1', F32, [300, 300], randn(r, 90_000, 0.1));
  g.init('b', F32, [1], [0.5]);
  g.init('w2', F32, [300, 4], randn(r, 1_200, 0.1));
  const h = g.node('Add', [g.node('MatMul', ['x', 'w1']), 'b']);
  g.output(g.node('MatMul', [h, 'w2'], { outputs: ['y'] }), F32, [1, 4]);
  return g.model({ opset: 17 });
}

describe('writeModelFile', () => {
  it('writes a file that decodes to the same model and gives the same outputs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evlm-write-'));
    try {
      const m = model();
      const file = path.join(dir, 'm.onnx');
      const n = await writeModelFile(m, file);
      const written = fs.readFileSync(file);
      assert.equal(n, written.byteLength);
      const oneBuffer = encodeModel(m);
      assert.equal(written.byteLength, oneBuffer.byteLength, 'the same fields, in another order');
      assert.ok(Buffer.from(encodeModel(decodeModel(written))).equals(Buffer.from(oneBuffer)), 're-encoded: byte-identical');
      assert.deepEqual(decodeModel(written).graph!.initializer!.map((t) => t.name), ['w1', 'b', 'w2'], 'initializer order kept');

      const x = new ort.Tensor('float32', randn(rng(3), 300), [1, 300]);
      const run = async (src: string | Uint8Array) => {
        const s = await ort.InferenceSession.create(src as string, { executionProviders: ['cpu'] });
        const y = (await s.run({ x })).y.data as Float32Array;
        await s.release();
        return Array.from(y);
      };
      assert.deepEqual(await run(file), await run(oneBuffer));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes a model without a graph', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evlm-write-'));
    try {
      const m = { irVersion: 8, producerName: 'none' };
      const file = path.join(dir, 'm.onnx');
      await writeModelFile(m, file);
      assert.equal(decodeModel(fs.readFileSync(file)).producerName, 'none');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
