// Fitting the unfamiliar-image statistics (familiarity.ts) from in-domain calibration vectors: the mean, the top
// principal directions of the covariance (cyclic Jacobi: exact enough and simple to check), the residual variance,
// and the threshold, a quantile of the scores of calibration images kept out of the fit.
import { headScore, pcaScore, type FamiliarityModel } from './familiarity.js';

/** Eigen-decomposition of a symmetric n x n matrix (row-major): eigenvalues descending, eigenvectors as rows. */
export function symmetricEigen(a: Float64Array, n: number, maxSweeps = 60): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += A[i] * A[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q] ** 2;
    if (off <= 1e-22 * scale || off === 0) break;
    for (let p = 0; p < n - 1; p++) for (let q = p + 1; q < n; q++) rotate(A, V, n, p, q);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[y * n + y] - A[x * n + x]);
  const values = Float64Array.from(order, (i) => A[i * n + i]);
  const vectors = new Float64Array(n * n);
  // V's columns are the eigenvectors: row r of the result is column order[r].
  order.forEach((col, r) => {
    for (let k = 0; k < n; k++) vectors[r * n + k] = V[k * n + col];
  });
  return { values, vectors };
}

/** One Jacobi rotation in the (p, q) plane that zeroes A[p][q]: A <- J^T A J, V <- V J. */
function rotate(A: Float64Array, V: Float64Array, n: number, p: number, q: number): void {
  const apq = A[p * n + q];
  if (apq === 0) return;
  const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < n; k++) {
    const akp = A[k * n + p];
    const akq = A[k * n + q];
    A[k * n + p] = c * akp - s * akq;
    A[k * n + q] = s * akp + c * akq;
  }
  for (let k = 0; k < n; k++) {
    const apk = A[p * n + k];
    const aqk = A[q * n + k];
    A[p * n + k] = c * apk - s * aqk;
    A[q * n + k] = s * apk + c * aqk;
  }
  for (let k = 0; k < n; k++) {
    const vkp = V[k * n + p];
    const vkq = V[k * n + q];
    V[k * n + p] = c * vkp - s * vkq;
    V[k * n + q] = s * vkp + c * vkq;
  }
}

/** The q-quantile of values, linearly interpolated between order statistics (numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Array.from(values).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Mean, k principal directions (unit rows) with their variances (denominator n - 1), and the residual variance. */
export function fitPca(vectors: Float64Array[], k: number): Omit<FamiliarityModel, 'threshold' | 'globalTokens'> {
  const n = vectors.length;
  const dim = vectors[0].length;
  if (n < 3) throw new Error('a PCA needs at least 3 vectors');
  if (k < 1 || k >= dim || k > n - 2) throw new Error(`components must be in [1, min(${dim - 1}, ${n - 2})], got ${k}`);
  const mean = new Float64Array(dim);
  for (const v of vectors) for (let d = 0; d < dim; d++) mean[d] += v[d] / n;
  const cov = new Float64Array(dim * dim);
  const c = new Float64Array(dim);
  for (const v of vectors) {
    for (let d = 0; d < dim; d++) c[d] = v[d] - mean[d];
    for (let i = 0; i < dim; i++) {
      const ci = c[i];
      for (let j = i; j < dim; j++) cov[i * dim + j] += ci * c[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      cov[i * dim + j] /= n - 1;
      cov[j * dim + i] = cov[i * dim + j];
    }
  }
  const { values, vectors: dirs } = symmetricEigen(cov, dim);
  // A direction with (numerically) no variance would divide by zero: floor it at a millionth of the largest.
  const variances = Float64Array.from(values.subarray(0, k), (v) => Math.max(v, values[0] * 1e-6, 1e-12));
  const components = dirs.slice(0, k * dim);
  // The residual variance: the mean square of what the k directions leave of each calibration vector.
  let residual = 0;
  for (const v of vectors) {
    let total = 0;
    let explained = 0;
    for (let d = 0; d < dim; d++) total += (v[d] - mean[d]) ** 2;
    for (let i = 0; i < k; i++) {
      let p = 0;
      for (let d = 0; d < dim; d++) p += (v[d] - mean[d]) * components[i * dim + d];
      explained += p * p;
    }
    residual += Math.max(0, total - explained) / n;
  }
  return { dim, mean, components, variances, residualVariance: Math.max(residual, 1e-12) };
}

/** [fit, held out]: every fourth vector (index % 4 == 3) is held out, the rest fitted. */
export function splitHeldOut<T>(xs: T[]): [T[], T[]] {
  return [xs.filter((_, i) => i % 4 !== 3), xs.filter((_, i) => i % 4 === 3)];
}

export interface FitResult {
  model: FamiliarityModel;
  fitScores: number[];
  thresholdScores: number[];
}

/**
 * Fits on every image but each fourth (index % 4 == 3), which is held out: the threshold is the `q`-quantile of
 * the held-out images' scores (a fit's own images score lower than new in-domain images do).
 */
export function fitFamiliarity(pooled: Float64Array[], opts: { components: number; quantile: number; globalTokens: number }): FitResult {
  const [fit, held] = splitHeldOut(pooled);
  if (held.length < 2) throw new Error(`${pooled.length} calibration images are too few (at least 8; a few hundred give a steady threshold)`);
  const pca = fitPca(fit, opts.components);
  const fitScores = fit.map((v) => pcaScore(v, pca));
  const thresholdScores = held.map((v) => pcaScore(v, pca));
  const threshold = quantile(thresholdScores, opts.quantile);
  return { model: { ...pca, globalTokens: opts.globalTokens, threshold }, fitScores, thresholdScores };
}

/**
 * The logistic head: standardised pooled vectors, in-domain (label 0) against unlike images (label 1), the two
 * classes weighted equally, L2 `lambda`, full-batch gradient descent. Every fourth image of each class is held out;
 * the threshold is the `q`-quantile of the held-out in-domain images' probabilities, so about 1 - q of new in-domain
 * images are flagged whatever the negatives were.
 */
export function fitHead(pos: Float64Array[], neg: Float64Array[], opts: { quantile: number; globalTokens: number; steps?: number; lambda?: number; lr?: number }): FitResult & { negativeHeldOutFlagged: number } {
  const [fitP, heldP] = splitHeldOut(pos);
  const [fitN, heldN] = splitHeldOut(neg);
  if (heldP.length < 2 || fitN.length < 2) throw new Error(`${pos.length} calibration and ${neg.length} unlike images are too few (at least 8 of each)`);
  const dim = pos[0].length;
  const all = [...fitP, ...fitN];
  const mean = new Float64Array(dim);
  const scale = new Float64Array(dim);
  for (const v of all) for (let d = 0; d < dim; d++) mean[d] += v[d] / all.length;
  for (const v of all) for (let d = 0; d < dim; d++) scale[d] += (v[d] - mean[d]) ** 2 / all.length;
  for (let d = 0; d < dim; d++) scale[d] = Math.sqrt(scale[d]) + 1e-6;
  const xs = all.map((v) => Float64Array.from(v, (x, d) => (x - mean[d]) / scale[d]));
  const ys = all.map((_, i) => (i < fitP.length ? 0 : 1));
  const ws = ys.map((y) => (y === 0 ? fitN.length / fitP.length : 1));
  const weights = new Float64Array(dim);
  let bias = 0;
  const { steps = 3000, lambda = 1e-2, lr = 0.1 } = opts;
  const grad = new Float64Array(dim);
  for (let t = 0; t < steps; t++) {
    grad.fill(0);
    let gb = 0;
    for (let i = 0; i < xs.length; i++) {
      let z = bias;
      for (let d = 0; d < dim; d++) z += weights[d] * xs[i][d];
      const g = (ws[i] * (1 / (1 + Math.exp(-z)) - ys[i])) / xs.length;
      for (let d = 0; d < dim; d++) grad[d] += g * xs[i][d];
      gb += g;
    }
    for (let d = 0; d < dim; d++) weights[d] -= lr * (grad[d] + lambda * weights[d]);
    bias -= lr * gb;
  }
  const model: FamiliarityModel = {
    dim, globalTokens: opts.globalTokens, mean, components: new Float64Array(0), variances: new Float64Array(0),
    residualVariance: 1, threshold: 0, head: { scale, weights, bias },
  };
  const score = (v: Float64Array) => headScore(v, { dim, mean, head: model.head! });
  const thresholdScores = heldP.map(score);
  model.threshold = quantile(thresholdScores, opts.quantile);
  const negativeHeldOutFlagged = heldN.length ? heldN.filter((v) => score(v) > model.threshold).length / heldN.length : NaN;
  return { model, fitScores: fitP.map(score), thresholdScores, negativeHeldOutFlagged };
}
