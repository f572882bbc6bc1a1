// The unfamiliar-image check's score, fit and statistics file, on cases small enough to compute by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkFamiliarityFile, checkFeatures, familiarityScore, globalPooled, headScore, loadFamiliarity, pcaScore, sha256File, unfamiliarWarning,
  FAMILIARITY_FORMAT, FAMILIARITY_HEAD_SIGNAL, FAMILIARITY_SIGNAL, FAMILIARITY_VERSION, type FamiliarityModel,
} from '../../runtime/model/familiarity.js';
import { fitFamiliarity, fitHead, fitPca, quantile, symmetricEigen } from '../../runtime/model/familiarityFit.js';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('globalPooled averages the last image_seq_len rows (the global image)', () => {
  // 3 rows of width 2; the global image is the last 2 rows: (3 + 5) / 2, (4 + 6) / 2.
  assert.deepEqual(Array.from(globalPooled([1, 2, 3, 4, 5, 6], 2, 2)), [4, 5]);
  assert.deepEqual(Array.from(globalPooled([1, 2, 3, 4, 5, 6], 2, 1)), [5, 6]);
  assert.throws(() => globalPooled([1, 2, 3, 4, 5], 2, 2), /not rows of 2/);
  assert.throws(() => globalPooled([1, 2], 2, 2), /ending in a 2-row global image/);
});

// One principal direction (0.6, 0.8, 0) with variance 25 and residual variance 2, around mean (1, 0, 0).
const m1 = { dim: 3, mean: Float64Array.from([1, 0, 0]), components: Float64Array.from([0.6, 0.8, 0]), variances: Float64Array.from([25]), residualVariance: 2 };

test('pcaScore: (projection^2 / variance + residual^2 / residual variance) / (k + 1), by hand', () => {
  // x - mean = (3, 4, 0): projection 0.6*3 + 0.8*4 = 5, 25 / 25 = 1; nothing left over: (1 + 0) / 2.
  close(pcaScore([4, 4, 0], m1), 0.5);
  // x - mean = (0, 0, 2): no projection; residual 4, 4 / 2 = 2: (0 + 2) / 2.
  close(pcaScore([1, 0, 2], m1), 1);
  // x - mean = (-0.8, 0.6, 1): orthogonal to the direction; residual 0.64 + 0.36 + 1 = 2: (0 + 1) / 2.
  close(pcaScore([0.2, 0.6, 1], m1), 0.5);
  // x - mean = (6, 8, 2): projection 10, 100 / 25 = 4; residual 4, 4 / 2 = 2: (4 + 2) / 2.
  close(pcaScore([7, 8, 2], m1), 3);
  // the mean itself scores 0
  close(pcaScore([1, 0, 0], m1), 0);
});

test('checkFeatures flags a score above the threshold, not one at it', () => {
  const model: FamiliarityModel = { ...m1, globalTokens: 1, threshold: 1 };
  // two rows of width 3; only the last (the global image) counts: (1, 0, 2) scores exactly 1
  const at = checkFeatures(model, [100, 100, 100, 1, 0, 2]);
  close(at.score, 1);
  assert.equal(at.familiar, true);
  const above = checkFeatures(model, [0, 0, 0, 7, 8, 2]);
  close(above.score, 3);
  assert.equal(above.familiar, false);
  assert.equal(above.threshold, 1);
  assert.ok(above.ms >= 0);
  const w = unfamiliarWarning(above);
  assert.equal(w.code, 'unfamiliar-image');
  assert.equal(w.score, 3);
  assert.equal(w.threshold, 1);
  assert.match(w.message, /unlike the images this model was trained on \(familiarity score 3\.00, threshold 1\.00\)/);
});

test('symmetricEigen: [[2, 1], [1, 2]] has eigenvalues 3 and 1 along (1, 1) and (1, -1)', () => {
  const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  close(values[0], 3, 1e-12);
  close(values[1], 1, 1e-12);
  close(Math.abs(vectors[0]), Math.SQRT1_2, 1e-12);
  close(vectors[0] * vectors[1], 0.5, 1e-12); // same sign: (1, 1) / sqrt 2
  close(vectors[2] * vectors[3], -0.5, 1e-12); // opposite signs: (1, -1) / sqrt 2
});

test('symmetricEigen reconstructs a 6 x 6 symmetric matrix from orthonormal eigenvectors', () => {
  const n = 6;
  const a = new Float64Array(n * n);
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rnd();
  const { values, vectors } = symmetricEigen(a, n);
  for (let i = 1; i < n; i++) assert.ok(values[i - 1] >= values[i], 'descending');
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      let rec = 0;
      for (let k = 0; k < n; k++) {
        dot += vectors[i * n + k] * vectors[j * n + k];
        rec += values[k] * vectors[k * n + i] * vectors[k * n + j];
      }
      close(dot, i === j ? 1 : 0, 1e-10);
      close(rec, a[i * n + j], 1e-10);
    }
  }
});

test('quantile interpolates between order statistics as numpy does', () => {
  close(quantile([4, 1, 3, 2], 0.5), 2.5);
  close(quantile([1, 2, 3, 4], 0.99), 3.97);
  close(quantile([1, 2, 3, 4], 1), 4);
  close(quantile([1, 2, 3, 4], 0), 1);
  close(quantile([5], 0.99), 5);
});

test('fitPca on four points: the long axis, its variance (n - 1) and the residual variance (n), by hand', () => {
  const pts = [[2, 0], [-2, 0], [0, 1], [0, -1]].map((p) => Float64Array.from(p));
  const p = fitPca(pts, 1);
  assert.deepEqual(Array.from(p.mean), [0, 0]);
  close(Math.abs(p.components[0]), 1, 1e-12);
  close(p.components[1], 0, 1e-12);
  close(p.variances[0], 8 / 3, 1e-12); // (4 + 4) / 3
  close(p.residualVariance, 0.5, 1e-12); // (0 + 0 + 1 + 1) / 4
  close(pcaScore([2, 0], p), 0.75); // (4 / (8/3) + 0) / 2
  close(pcaScore([0, 1], p), 1); // (0 + 1 / 0.5) / 2
  assert.throws(() => fitPca(pts, 2), /components must be/);
});

test('fitFamiliarity keeps every fourth vector out of the fit and takes the threshold from their scores', () => {
  // 8 vectors: indices 3 and 7 are held out. The fit's 6 lie on the x axis; the held-out ones are off it.
  const v = (x: number, y: number) => Float64Array.from([x, y, 0]);
  const pooled = [v(1, 0), v(-1, 0), v(2, 0.1), v(0, 3), v(-2, -0.1), v(0.5, 0), v(-0.5, 0), v(0, -1)];
  const r = fitFamiliarity(pooled, { components: 1, quantile: 1, globalTokens: 4 });
  assert.equal(r.fitScores.length, 6);
  assert.equal(r.thresholdScores.length, 2);
  assert.equal(r.model.globalTokens, 4);
  // the threshold is the largest held-out score (quantile 1): the one of (0, 3), far off the fitted axis
  close(r.model.threshold, Math.max(...r.thresholdScores));
  close(r.model.threshold, pcaScore(v(0, 3), r.model));
  assert.ok(r.model.threshold > Math.max(...r.fitScores));
  assert.throws(() => fitFamiliarity(pooled.slice(0, 4), { components: 1, quantile: 0.99, globalTokens: 1 }), /too few/);
});

/** A valid familiarity.json for m1, made for the vision file `vision`. */
function fileFor(vision: string): Record<string, unknown> {
  return {
    format: FAMILIARITY_FORMAT, version: FAMILIARITY_VERSION, signal: FAMILIARITY_SIGNAL, featureDim: 3, globalTokens: 1,
    mean: [1, 0, 0], components: [[0.6, 0.8, 0]], variances: [25], residualVariance: 2, threshold: 1, thresholdRule: 'test',
    vision: { file: 'onnx/vision_encoder.onnx', sha256: sha256File(vision) }, calibration: {},
  };
}

test('checkFamiliarityFile names what is wrong', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evlm-fam-'));
  try {
    const vision = join(dir, 'v.onnx');
    writeFileSync(vision, 'vision weights');
    const good = fileFor(vision);
    assert.equal(checkFamiliarityFile(good, 3, 1), null);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, format: 'other' }, /format/],
      [{ ...good, version: 2 }, /version 2/],
      [{ ...good, signal: 'codebook' }, /signal/],
      [{ ...good, featureDim: 4 }, /featureDim 4 is not the model's 3/],
      [{ ...good, globalTokens: 64 }, /image_seq_len 1/],
      [{ ...good, mean: [1, 0] }, /mean must be 3 numbers/],
      [{ ...good, variances: [0] }, /variances/],
      [{ ...good, components: [[0.6, 0.8]] }, /components must be 1 rows of 3/],
      [{ ...good, residualVariance: -1 }, /residualVariance/],
      [{ ...good, threshold: 'high' }, /threshold/],
      [{ ...good, vision: {} }, /sha256/],
    ];
    for (const [f, re] of cases) assert.match(checkFamiliarityFile(f, 3, 1) ?? '', re);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadFamiliarity: no file, a malformed one, one for another vision encoder, and a good one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evlm-fam-'));
  try {
    const vision = join(dir, 'v.onnx');
    writeFileSync(vision, 'vision weights');
    assert.match(loadFamiliarity(dir, vision, 3, 1).reason, /no familiarity\.json: no unfamiliar-image check/);
    writeFileSync(join(dir, 'familiarity.json'), '{ not json');
    const bad = loadFamiliarity(dir, vision, 3, 1);
    assert.equal(bad.model, null);
    assert.match(bad.reason, /malformed/);
    writeFileSync(join(dir, 'familiarity.json'), JSON.stringify(fileFor(vision)));
    const ok = loadFamiliarity(dir, vision, 3, 1);
    assert.ok(ok.model, ok.reason);
    close(pcaScore([7, 8, 2], ok.model!), 3);
    assert.equal(loadFamiliarity(dir, vision, 4, 1).model, null, 'another feature width');
    writeFileSync(vision, 'retrained vision weights');
    const stale = loadFamiliarity(dir, vision, 3, 1);
    assert.equal(stale.model, null);
    assert.match(stale.reason, /made for another vision encoder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The logistic head: mean (1, 2), scale (2, 4), weights (1, -2), bias 0.5.
const h1 = { dim: 2, mean: Float64Array.from([1, 2]), head: { scale: Float64Array.from([2, 4]), weights: Float64Array.from([1, -2]), bias: 0.5 } };

test('headScore: sigmoid(sum w (x - mean) / scale + b), by hand', () => {
  // z = 1 * (3 - 1) / 2 - 2 * (2 - 2) / 4 + 0.5 = 1.5
  close(headScore([3, 2], h1), 1 / (1 + Math.exp(-1.5)));
  // z = 1 * (1 - 1) / 2 - 2 * (6 - 2) / 4 + 0.5 = -1.5
  close(headScore([1, 6], h1), 1 / (1 + Math.exp(1.5)));
  // familiarityScore takes the head when there is one, the PCA score otherwise
  const full: FamiliarityModel = { ...h1, globalTokens: 1, components: new Float64Array(0), variances: new Float64Array(0), residualVariance: 1, threshold: 0.5 };
  close(familiarityScore([3, 2], full), headScore([3, 2], h1));
  close(familiarityScore([4, 4, 0], { ...m1, globalTokens: 1, threshold: 1 }), 0.5);
  // checkFeatures on one feature row (the global image) and the head's wording of the warning
  const r = checkFeatures(full, [3, 2]);
  assert.equal(r.familiar, false);
  assert.match(unfamiliarWarning(r).message, /\(unfamiliar with probability 0\.82, threshold 0\.50\)/);
});

test('fitHead separates two clusters and takes the threshold from the held-out in-domain scores', () => {
  const rng = (() => { let s = 7; return () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5; })();
  const pos = Array.from({ length: 40 }, () => Float64Array.from([rng(), rng()]));
  const neg = Array.from({ length: 40 }, () => Float64Array.from([4 + rng(), 4 + rng()]));
  const r = fitHead(pos, neg, { quantile: 0.9, globalTokens: 1, steps: 500 });
  assert.equal(r.thresholdScores.length, 10); // every fourth of 40
  close(r.model.threshold, quantile(r.thresholdScores, 0.9));
  assert.equal(r.negativeHeldOutFlagged, 1); // the far cluster is flagged
  const score = (v: number[]) => familiarityScore(v, r.model);
  assert.ok(score([0, 0]) < r.model.threshold && score([4, 4]) > r.model.threshold);
  assert.throws(() => fitHead(pos.slice(0, 4), neg, { quantile: 0.9, globalTokens: 1 }), /too few/);
});

test('checkFamiliarityFile reads the logistic signal and names what is wrong with it', () => {
  const f = {
    format: FAMILIARITY_FORMAT, version: FAMILIARITY_VERSION, signal: FAMILIARITY_HEAD_SIGNAL, featureDim: 2, globalTokens: 1,
    mean: [1, 2], components: [], variances: [], residualVariance: 1, head: { scale: [2, 4], weights: [1, -2], bias: 0.5 },
    threshold: 0.8, vision: { file: 'onnx/vision_encoder.onnx', sha256: 'x' },
  };
  assert.equal(checkFamiliarityFile(f, 2, 1), null);
  assert.match(checkFamiliarityFile({ ...f, threshold: 1.5 }, 2, 1) ?? '', /probability/);
  assert.match(checkFamiliarityFile({ ...f, head: { ...f.head, scale: [2, 0] } }, 2, 1) ?? '', /head.scale/);
  assert.match(checkFamiliarityFile({ ...f, head: { ...f.head, weights: [1] } }, 2, 1) ?? '', /head.weights/);
  assert.match(checkFamiliarityFile({ ...f, signal: 'other' }, 2, 1) ?? '', /signal/);
});
