// npm run familiarity -- --model DIR --images DIR [--images DIR ...] [--components K] [--quantile Q] [--out FILE]
//   [--report DIR ...] [--device D] [--json]
// Makes the model folder's familiarity.json (the unfamiliar-image check's statistics, runtime/model/familiarity.ts)
// from in-domain calibration images, and with --report prints the flag rate of other folders under them.
// Exit codes: 0 written, 2 bad input (folders, images, options, model folder), 1 internal failure.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { BadInputError, isBadInput, oneLine } from '../errors.js';
import { defaultModelDir } from '../paths.js';
import { Vlm } from '../vlm.js';
import { FAMILIARITY_FILE } from '../model/layout.js';
import { FAMILIARITY_FORMAT, FAMILIARITY_HEAD_SIGNAL, FAMILIARITY_SIGNAL, FAMILIARITY_VERSION, sha256File, type FamiliarityFile, type FamiliarityModel } from '../model/familiarity.js';
import { fitFamiliarity, fitHead, quantile } from '../model/familiarityFit.js';
import { machineInfo } from '../eval/machine.js';
import { flagRates, flagTable, imagesIn, pooledOf } from './familiarityRates.js';
import { listOption, parseDevice, parseIntOption } from './options.js';

export const HELP = `usage: npm run familiarity -- --model DIR --images DIR [--images DIR ...] [options]

Makes DIR/familiarity.json, the statistics of the unfamiliar-image check (answers about an image unlike the
model's training images carry the warning "unfamiliar-image"), from in-domain calibration images: the global
image's vision features of each, a PCA of them, and a threshold from the images kept out of the fit. Run it again
after the model is retrained (a familiarity.json made for another vision encoder is ignored). For the embedded
model the calibration images come from its training generators (add --styled for a model trained with
train/styles.py):
  /usr/bin/python3 train/calibration_images.py /tmp/calib 600 --styled
  /usr/bin/python3 train/ood_images.py /tmp/ood 400
  npm run familiarity -- --model models/default --images /tmp/calib --negatives /tmp/ood --report data/heldout --report data/unfamiliar

options:
  --model DIR          model folder (default: the embedded model, models/default)
  --images DIR         a folder of calibration images (png, jpg, webp, gif, bmp); repeatable; never test images
  --negatives DIR      images unlike the calibration images, from other sources (train/ood_images.py); repeatable;
                       with it the check is a logistic head trained on --images against these, not a PCA
  --components K       principal directions kept (default 64; at most the feature width - 1; PCA only)
  --quantile Q         the threshold: this quantile of the held-out calibration images' scores (default 0.99)
  --out FILE           write here instead of DIR/familiarity.json
  --report DIR         after writing, the flag rate of each folder (repeatable); measurement only
  --device D           auto|cpu|webgpu|cuda|dml|coreml (default cpu)
  --json               print the summary as JSON
  -h, --help           this help

Every fourth calibration image (sorted by name) is kept out of the fit; the threshold is the --quantile of their
scores. A few hundred images give a steady threshold (docs/familiarity.md).
`;

/** A calibration folder, with how its images were made when it says so (train/calibration_images.py's calibration.json). */
function folderInfo(dir: string): { folder: string; made?: unknown } {
  const p = join(resolve(dir), 'calibration.json');
  try {
    return existsSync(p) ? { folder: dir, made: JSON.parse(readFileSync(p, 'utf8')) } : { folder: dir };
  } catch {
    return { folder: dir };
  }
}

/** Rounds to 7 significant digits: the file stays small and the scores do not move. */
const r7 = (v: number) => Number(v.toPrecision(7));

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      images: { type: 'string', multiple: true },
      negatives: { type: 'string', multiple: true },
      components: { type: 'string' },
      quantile: { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string', multiple: true },
      device: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals.length) throw new BadInputError(`unexpected argument ${JSON.stringify(positionals[0])} (calibration folders go after --images)`);
  const q = values.quantile === undefined ? 0.99 : Number(values.quantile);
  if (!(q > 0 && q <= 1)) throw new BadInputError(`--quantile must be a number in (0, 1], got ${JSON.stringify(values.quantile)}`);
  const images = listOption(values.images) ?? [];
  if (!values.help && !images.length) throw new BadInputError('--images DIR is required: a folder of in-domain calibration images (npm run familiarity -- --help)');
  return {
    help: !!values.help,
    json: !!values.json,
    modelDir: resolve(values.model ?? defaultModelDir()),
    images,
    negatives: listOption(values.negatives) ?? [],
    report: listOption(values.report) ?? [],
    components: parseIntOption('components', values.components, 64, 1, 4096),
    quantile: q,
    out: values.out,
    device: parseDevice(values.device ?? 'cpu'),
  };
}

type Options = ReturnType<typeof parse>;

/** The file's contents: the fitted statistics, what they came from, and how the threshold was chosen. */
function fileOf(o: Options, vlm: Vlm, model: FamiliarityModel, fit: { fitScores: number[]; thresholdScores: number[] }, sources: string[], argv: string[]): FamiliarityFile {
  const k = model.variances.length;
  const q = (xs: number[]) => ({ p50: r7(quantile(xs, 0.5)), p90: r7(quantile(xs, 0.9)), p99: r7(quantile(xs, 0.99)), max: r7(Math.max(...xs)) });
  const m = machineInfo();
  return {
    format: FAMILIARITY_FORMAT,
    version: FAMILIARITY_VERSION,
    signal: model.head ? FAMILIARITY_HEAD_SIGNAL : FAMILIARITY_SIGNAL,
    featureDim: model.dim,
    globalTokens: model.globalTokens,
    mean: Array.from(model.mean, r7),
    components: Array.from({ length: k }, (_, i) => Array.from(model.components.subarray(i * model.dim, (i + 1) * model.dim), r7)),
    variances: Array.from(model.variances, r7),
    residualVariance: r7(model.residualVariance),
    ...(model.head ? { head: { scale: Array.from(model.head.scale, r7), weights: Array.from(model.head.weights, r7), bias: r7(model.head.bias) } } : {}),
    threshold: r7(model.threshold),
    thresholdRule: `quantile ${o.quantile} of the scores of the ${fit.thresholdScores.length} calibration images kept out of the fit (every fourth by name)`,
    vision: { file: relative(o.modelDir, vlm.config.files.vision).split('\\').join('/'), sha256: sha256File(vlm.config.files.vision) },
    calibration: {
      images: fit.fitScores.length + fit.thresholdScores.length,
      fitImages: fit.fitScores.length,
      thresholdImages: fit.thresholdScores.length,
      folders: sources.map(folderInfo),
      ...(o.negatives.length ? { negatives: o.negatives.map(folderInfo), negativeHeldOutFlagged: (fit as { negativeHeldOutFlagged?: number }).negativeHeldOutFlagged } : {}),
      detail: 'full',
      components: k,
      fitScores: q(fit.fitScores),
      heldOutScores: q(fit.thresholdScores),
      made: { date: m.date, commit: m.commit, command: `npm run familiarity -- ${argv.join(' ')}` },
    },
  };
}

async function encodeAll(vlm: Vlm, files: string[], err: (s: string) => void): Promise<Float64Array[]> {
  const pooled: Float64Array[] = [];
  for (const [i, f] of files.entries()) {
    pooled.push((await pooledOf(vlm, f)).vector);
    if ((i + 1) % 100 === 0) err(`familiarity: ${i + 1} of ${files.length} images encoded\n`);
  }
  return pooled;
}

async function run(o: Options, argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<void> {
  const files = o.images.flatMap((d) => imagesIn(d));
  if (files.length < 8) throw new BadInputError(`${files.length} calibration images are too few (at least 8; a few hundred give a steady threshold)`);
  const vlm = await Vlm.load({ modelDir: o.modelDir, device: o.device, scores: false });
  try {
    const k = Math.min(o.components, vlm.config.hiddenSize - 1, Math.floor((files.length * 3) / 4) - 2);
    if (k < 1) throw new BadInputError('too few calibration images for even one principal direction');
    const t0 = performance.now();
    const pooled = await encodeAll(vlm, files, err);
    const negFiles = o.negatives.flatMap((d) => imagesIn(d));
    if (o.negatives.length && negFiles.length < 8) throw new BadInputError(`${negFiles.length} unlike images under --negatives are too few (at least 8)`);
    const neg = negFiles.length ? await encodeAll(vlm, negFiles, err) : [];
    const encodeS = (performance.now() - t0) / 1000;
    const fit = neg.length
      ? fitHead(pooled, neg, { quantile: o.quantile, globalTokens: vlm.config.imageSeqLen })
      : fitFamiliarity(pooled, { components: k, quantile: o.quantile, globalTokens: vlm.config.imageSeqLen });
    const file = fileOf(o, vlm, fit.model, fit, o.images, argv);
    const dest = resolve(o.out ?? join(o.modelDir, FAMILIARITY_FILE));
    const tmp = `${dest}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(file)}\n`);
    renameSync(tmp, dest);
    const rates = o.report.length ? await flagRates(vlm, { ...fit.model, threshold: file.threshold }, o.report) : [];
    const summary = { file: dest, images: files.length, components: k, threshold: file.threshold, calibration: file.calibration, encodeSeconds: Math.round(encodeS), report: rates };
    if (o.json) out(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      out(`wrote ${dest}: ${files.length} calibration images (${fit.fitScores.length} fit, ${fit.thresholdScores.length} for the threshold), ` +
        `${fit.model.head ? 'a logistic head' : `${k} components`}, threshold ${file.threshold} (${file.thresholdRule}); encoding took ${encodeS.toFixed(0)} s\n`);
      if (rates.length) out(`${flagTable(rates, file.threshold)}\n`);
    }
  } finally {
    await vlm.release();
  }
}

export async function main(argv = process.argv.slice(2), out = (s: string) => process.stdout.write(s), err = (s: string) => process.stderr.write(s)): Promise<number> {
  try {
    const o = parse(argv);
    if (o.help) {
      out(HELP);
      return 0;
    }
    await run(o, argv, out, err);
    return 0;
  } catch (e) {
    err(`error: ${oneLine(e)}\n`);
    return isBadInput(e) || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

if (require.main === module) main().then((c) => process.exit(c));
