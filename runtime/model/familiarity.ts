// The unfamiliar-image check: how far an image's vision features lie from those of the model's in-domain
// calibration images, against a threshold chosen from the calibration images themselves. The statistics live in
// the model folder's familiarity.json (layout.ts FAMILIARITY_FILE), made by `npm run familiarity`
// (familiarityFit.ts); a folder without it, or with one made for another vision encoder, gets no check.
//
// The signal (docs/familiarity.md has the alternatives' measurements): the global image's features (the last
// image_seq_len rows of the vision output: the whole image as one tile, there at every detail level), averaged
// into one vector x, scored by a PCA Mahalanobis distance with the residual as one more component:
//   score(x) = ( sum_i ((x - mean) . v_i)^2 / var_i  +  |r|^2 / residualVariance ) / (k + 1)
// where v_1..v_k are the calibration vectors' top principal directions with variances var_i, r is the part of
// x - mean outside their span and residualVariance its mean square over the calibration vectors. An in-domain image
// scores about 1; the check flags a score above the threshold.
//
// The second signal, 'global-logistic' (what the embedded model ships since its real-tools retraining, which made
// the in-domain feature distribution too broad for one Gaussian to tell photos from it): a logistic head on the
// same pooled vector, standardised, trained on the calibration images against images unlike them from other
// sources (train/ood_images.py: photos from wallpaper packages the test set does not use, text pages, code):
//   score(x) = sigmoid( sum_d w_d (x_d - mean_d) / scale_d + b ),  the probability that x is unfamiliar.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AskWarning } from '../protocol.js';
import { FAMILIARITY_FILE } from './layout.js';

export const FAMILIARITY_FORMAT = 'elastic-vlm-familiarity';
export const FAMILIARITY_VERSION = 1;
export const FAMILIARITY_SIGNAL = 'global-pca-mahalanobis';
export const FAMILIARITY_HEAD_SIGNAL = 'global-logistic';

/** familiarity.json. */
export interface FamiliarityFile {
  format: typeof FAMILIARITY_FORMAT;
  version: typeof FAMILIARITY_VERSION;
  signal: typeof FAMILIARITY_SIGNAL | typeof FAMILIARITY_HEAD_SIGNAL;
  /** Width of one vision feature row, and rows of the global image (image_seq_len). */
  featureDim: number;
  globalTokens: number;
  mean: number[];
  /** k principal directions, each featureDim long (unit vectors), and their variances. */
  components: number[][];
  variances: number[];
  residualVariance: number;
  /** The logistic head (signal 'global-logistic'; the PCA fields are then empty). */
  head?: { scale: number[]; weights: number[]; bias: number };
  /** Scores above it are flagged. */
  threshold: number;
  thresholdRule: string;
  /** The vision encoder the statistics were made with: another one (a retrained model) gets no check. */
  vision: { file: string; sha256: string };
  calibration: Record<string, unknown>;
}

/** The statistics as the score reads them. */
export interface FamiliarityModel {
  dim: number;
  globalTokens: number;
  mean: Float64Array;
  /** k x dim, row-major. */
  components: Float64Array;
  variances: Float64Array;
  residualVariance: number;
  threshold: number;
  /** Present for the logistic signal: the score is then headScore's. */
  head?: { scale: Float64Array; weights: Float64Array; bias: number };
}

export interface FamiliarityResult {
  score: number;
  threshold: number;
  familiar: boolean;
  /** Time the score took. */
  ms: number;
  /** The score is the logistic head's probability (else a PCA distance, about 1 in domain). */
  probability?: boolean;
}

/** The mean of the global image's feature rows: the last `tokens` rows of [rows, dim] features. */
export function globalPooled(features: ArrayLike<number>, dim: number, tokens: number): Float64Array {
  const rows = Math.floor(features.length / dim);
  if (rows < tokens || rows * dim !== features.length) throw new Error(`vision features of ${features.length} values are not rows of ${dim} ending in a ${tokens}-row global image`);
  const out = new Float64Array(dim);
  for (let r = rows - tokens; r < rows; r++) for (let d = 0; d < dim; d++) out[d] += features[r * dim + d];
  for (let d = 0; d < dim; d++) out[d] /= tokens;
  return out;
}

/** The PCA Mahalanobis score of one pooled vector (the header's formula). */
export function pcaScore(x: ArrayLike<number>, m: Pick<FamiliarityModel, 'dim' | 'mean' | 'components' | 'variances' | 'residualVariance'>): number {
  const { dim } = m;
  const k = m.variances.length;
  const c = new Float64Array(dim);
  let total = 0;
  for (let d = 0; d < dim; d++) {
    c[d] = x[d] - m.mean[d];
    total += c[d] * c[d];
  }
  let explained = 0;
  let sum = 0;
  for (let i = 0; i < k; i++) {
    let p = 0;
    for (let d = 0; d < dim; d++) p += c[d] * m.components[i * dim + d];
    explained += p * p;
    sum += (p * p) / m.variances[i];
  }
  // The residual's square is what the unit directions leave of |c|^2.
  const residual = Math.max(0, total - explained);
  return (sum + residual / m.residualVariance) / (k + 1);
}

/** The logistic head's probability that a pooled vector is unfamiliar (the header's second formula). */
export function headScore(x: ArrayLike<number>, m: Pick<FamiliarityModel, 'dim' | 'mean'> & { head: NonNullable<FamiliarityModel['head']> }): number {
  let z = m.head.bias;
  for (let d = 0; d < m.dim; d++) z += (m.head.weights[d] * (x[d] - m.mean[d])) / m.head.scale[d];
  return 1 / (1 + Math.exp(-z));
}

/** The score of a pooled vector under either signal. */
export function familiarityScore(x: ArrayLike<number>, m: FamiliarityModel): number {
  return m.head ? headScore(x, { ...m, head: m.head }) : pcaScore(x, m);
}

/** Scores an image's vision features ([rows, dim], the global image last). */
export function checkFeatures(m: FamiliarityModel, features: ArrayLike<number>): FamiliarityResult {
  const t0 = performance.now();
  const score = familiarityScore(globalPooled(features, m.dim, m.globalTokens), m);
  return { score, threshold: m.threshold, familiar: !(score > m.threshold), ms: performance.now() - t0, probability: !!m.head };
}

/** The warning an unfamiliar image's answers carry. */
export function unfamiliarWarning(r: FamiliarityResult): AskWarning {
  return {
    code: 'unfamiliar-image',
    message: `This image looks unlike the images this model was trained on (${r.probability ? 'unfamiliar with probability' : 'familiarity score'} ` +
      `${fmtScore(r.score)}, threshold ${fmtScore(r.threshold)}): its answer is likely wrong.`,
    score: Math.round(r.score * 1000) / 1000,
    threshold: Math.round(r.threshold * 1000) / 1000,
  };
}

// PCA scores are about 1 in domain, head scores are probabilities: two decimals keep both readable.
const fmtScore = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const numbers = (v: unknown, n: number): boolean => Array.isArray(v) && v.length === n && v.every(isNum);

/** Why a parsed familiarity.json cannot be used for features `dim` wide with `globalTokens` rows (null when it can). */
export function checkFamiliarityFile(f: Record<string, any>, dim: number, globalTokens: number): string | null {
  if (f.format !== FAMILIARITY_FORMAT) return `format is not ${FAMILIARITY_FORMAT}`;
  if (f.version !== FAMILIARITY_VERSION) return `version ${JSON.stringify(f.version)} is not ${FAMILIARITY_VERSION}`;
  if (f.signal !== FAMILIARITY_SIGNAL && f.signal !== FAMILIARITY_HEAD_SIGNAL) return `signal ${JSON.stringify(f.signal)} is not ${FAMILIARITY_SIGNAL} or ${FAMILIARITY_HEAD_SIGNAL}`;
  if (f.featureDim !== dim) return `featureDim ${JSON.stringify(f.featureDim)} is not the model's ${dim}`;
  if (f.globalTokens !== globalTokens) return `globalTokens ${JSON.stringify(f.globalTokens)} is not the model's image_seq_len ${globalTokens}`;
  if (!numbers(f.mean, dim)) return `mean must be ${dim} numbers`;
  if (f.signal === FAMILIARITY_HEAD_SIGNAL) return checkHead(f, dim);
  const k = Array.isArray(f.variances) ? f.variances.length : -1;
  if (k < 1 || k >= dim || !numbers(f.variances, k) || !f.variances.every((v: number) => v > 0)) return 'variances must be 1 to featureDim - 1 positive numbers';
  if (!Array.isArray(f.components) || f.components.length !== k || !f.components.every((c: unknown) => numbers(c, dim))) return `components must be ${k} rows of ${dim} numbers`;
  if (!isNum(f.residualVariance) || f.residualVariance <= 0) return 'residualVariance must be a positive number';
  if (!isNum(f.threshold) || f.threshold <= 0) return 'threshold must be a positive number';
  if (typeof f.vision?.sha256 !== 'string') return 'vision.sha256 is missing';
  return null;
}

function checkHead(f: Record<string, any>, dim: number): string | null {
  const h = f.head;
  if (!h || !numbers(h.scale, dim) || !h.scale.every((v: number) => v > 0)) return `head.scale must be ${dim} positive numbers`;
  if (!numbers(h.weights, dim)) return `head.weights must be ${dim} numbers`;
  if (!isNum(h.bias)) return 'head.bias must be a number';
  if (!isNum(f.threshold) || f.threshold <= 0 || f.threshold >= 1) return 'threshold must be a probability in (0, 1)';
  if (typeof f.vision?.sha256 !== 'string') return 'vision.sha256 is missing';
  return null;
}

export function toModel(f: FamiliarityFile): FamiliarityModel {
  return {
    dim: f.featureDim,
    globalTokens: f.globalTokens,
    mean: Float64Array.from(f.mean),
    components: Float64Array.from(f.components.flat()),
    variances: Float64Array.from(f.variances),
    residualVariance: f.residualVariance,
    threshold: f.threshold,
    head: f.head && { scale: Float64Array.from(f.head.scale), weights: Float64Array.from(f.head.weights), bias: f.head.bias },
  };
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * The model folder's familiarity statistics, or null with the reason: no file (no check, as for published SmolVLM
 * folders), a malformed one, or one made for another vision encoder (regenerate it with npm run familiarity).
 * Never throws: the check is optional and a bad file must not keep the model from answering.
 */
export function loadFamiliarity(dir: string, visionFile: string, dim: number, globalTokens: number): { model: FamiliarityModel | null; reason: string } {
  const p = join(dir, FAMILIARITY_FILE);
  if (!existsSync(p)) return { model: null, reason: `the model folder has no ${FAMILIARITY_FILE}: no unfamiliar-image check` };
  let f: Record<string, any>;
  try {
    f = JSON.parse(readFileSync(p, 'utf8'));
    if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new Error('not a JSON object');
  } catch (e) {
    return { model: null, reason: `${FAMILIARITY_FILE} is malformed (${(e as Error).message.split('\n')[0]}): no unfamiliar-image check` };
  }
  const bad = checkFamiliarityFile(f, dim, globalTokens);
  if (bad) return { model: null, reason: `${FAMILIARITY_FILE} cannot be used: ${bad}; no unfamiliar-image check` };
  if (f.vision.sha256 !== sha256File(visionFile)) {
    return { model: null, reason: `${FAMILIARITY_FILE} was made for another vision encoder (not this ${f.vision.file ?? 'file'}): no unfamiliar-image check until \`npm run familiarity\` makes it again` };
  }
  return { model: toModel(f as FamiliarityFile), reason: `unfamiliar-image check on (threshold ${f.threshold})` };
}
