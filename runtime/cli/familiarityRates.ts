// The images of calibration and test folders, their global-image vectors through a loaded model, and the
// unfamiliar-image flag rate of each folder (npm run familiarity --report, npm run eval --familiarity).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { BadInputError } from '../errors.js';
import { toFloat } from '../generate/tensors.js';
import { exactMatch } from '../eval/metrics.js';
import { familiarityScore, globalPooled, type FamiliarityModel } from '../model/familiarity.js';
import type { ImageDetail } from '../protocol.js';
import type { Vlm } from '../vlm.js';

const IMAGE = /\.(png|jpe?g|webp|gif|bmp)$/i;

/** The image files of a folder, sorted by name (a clear error for a missing or empty folder). */
export function imagesIn(dir: string): string[] {
  const d = resolve(dir);
  if (!existsSync(d) || !statSync(d).isDirectory()) throw new BadInputError(`not a folder: ${dir}`);
  const files = readdirSync(d).filter((f) => IMAGE.test(f)).sort().map((f) => join(d, f));
  if (!files.length) throw new BadInputError(`no png, jpg, webp, gif or bmp images in ${dir}`);
  return files;
}

/** The global image's pooled vision features of one image, and the vision encoder's time for it. */
export async function pooledOf(vlm: Vlm, file: string, detail: ImageDetail = 'full'): Promise<{ vector: Float64Array; visionMs: number }> {
  let enc;
  try {
    enc = await vlm.encodeImage(file, detail);
  } catch (e) {
    throw new BadInputError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  return { vector: globalPooled(toFloat(enc.features), vlm.config.hiddenSize, vlm.config.imageSeqLen), visionMs: enc.visionMs };
}

export interface FlagRate {
  set: string;
  dir: string;
  flagged: number;
  images: number;
  rate: number;
  /** Scores' median and extremes, and the files flagged (or, for an in-domain set, the ones that were). */
  median: number;
  min: number;
  max: number;
  flaggedFiles: string[];
  unflaggedFiles: string[];
}

/** Scores every image of each folder with `model` and counts those above its threshold. */
export async function flagRates(vlm: Vlm, model: FamiliarityModel, dirs: string[], detail: ImageDetail = 'full'): Promise<FlagRate[]> {
  const out: FlagRate[] = [];
  for (const dir of dirs) {
    const files = imagesIn(dir);
    const scores: number[] = [];
    for (const f of files) scores.push(familiarityScore((await pooledOf(vlm, f, detail)).vector, model));
    const flagged = files.filter((_, i) => scores[i] > model.threshold);
    const sorted = [...scores].sort((a, b) => a - b);
    out.push({
      set: basename(resolve(dir)), dir, flagged: flagged.length, images: files.length, rate: flagged.length / files.length,
      median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted[sorted.length - 1],
      flaggedFiles: flagged.map((f) => basename(f)), unflaggedFiles: files.filter((_, i) => !(scores[i] > model.threshold)).map((f) => basename(f)),
    });
  }
  return out;
}

/** One markdown table of flag rates. */
export function flagTable(rates: FlagRate[], threshold: number): string {
  const lines = [`| set | flagged | rate | score median [min, max] (threshold ${threshold.toFixed(3)}) |`, '|---|---|---|---|'];
  for (const r of rates) {
    lines.push(`| ${r.set} | ${r.flagged} / ${r.images} | ${(100 * r.rate).toFixed(1)} % | ${r.median.toFixed(2)} [${r.min.toFixed(2)}, ${r.max.toFixed(2)}] |`);
  }
  return lines.join('\n');
}

export interface FlagAccuracy {
  set: string;
  /** Short-answer exact-match accuracy (full cache, greedy) on the images the check passed and on those it flagged. */
  unflagged: { correct: number; questions: number };
  flagged: { correct: number; questions: number };
}

/**
 * Whether the flags point at wrong answers: the short questions of a set's samples.jsonl (describe left out),
 * answered with the full cache, split by whether their image was flagged.
 */
export async function flagAccuracy(vlm: Vlm, rate: FlagRate): Promise<FlagAccuracy | null> {
  const file = join(resolve(rate.dir), 'samples.jsonl');
  if (!existsSync(file)) return null;
  const flagged = new Set(rate.flaggedFiles);
  const out: FlagAccuracy = { set: rate.set, unflagged: { correct: 0, questions: 0 }, flagged: { correct: 0, questions: 0 } };
  for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l.trim())) {
    const s = JSON.parse(line) as { image: string; question: string; answer: string; task: string };
    if (s.task === 'describe') continue;
    const r = await vlm.conversation().ask(join(resolve(rate.dir), s.image), s.question, { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: 24 } });
    const bucket = flagged.has(basename(s.image)) ? out.flagged : out.unflagged;
    bucket.questions++;
    if (exactMatch(r.answer, s.answer)) bucket.correct++;
  }
  return out;
}

/** The default sets: the held-out set, the unfamiliar set, and the held-out set drawn by other renderers if present. */
export function defaultFamiliaritySets(root: string): string[] {
  return ['heldout', 'unfamiliar', 'heldout-real'].map((s) => join(root, 'data', s)).filter((d) => existsSync(d));
}

/** npm run eval -- --familiarity: flag rates per set under the model's own familiarity.json, and accuracy by flag. */
export async function familiarityReport(vlm: Vlm, dirs: string[]): Promise<{ rates: FlagRate[]; accuracy: FlagAccuracy[]; markdown: string }> {
  if (!vlm.familiarity) throw new BadInputError(`${vlm.familiarityReason} (npm run familiarity makes the statistics)`);
  const rates = await flagRates(vlm, vlm.familiarity, dirs);
  const accuracy: FlagAccuracy[] = [];
  for (const r of rates) {
    const a = await flagAccuracy(vlm, r);
    if (a) accuracy.push(a);
  }
  const acc = (b: { correct: number; questions: number }) => (b.questions ? `${(b.correct / b.questions).toFixed(3)} (${b.questions})` : '-');
  const lines = ['| set | accuracy, images not flagged (questions) | accuracy, images flagged (questions) |', '|---|---|---|'];
  for (const a of accuracy) lines.push(`| ${a.set} | ${acc(a.unflagged)} | ${acc(a.flagged)} |`);
  return { rates, accuracy, markdown: `${flagTable(rates, vlm.familiarity.threshold)}\n\n${lines.join('\n')}` };
}
