// npm run eval -- [--policy P[,P]] [--keep K[,K]] [--limit N | --per-task N] [--json] [--model DIR] [--device D]
//   [--positions absolute|compressed] [--docs DIR]
// Runs the held-out set (data/heldout/samples.jsonl) through the runtime for each policy x keep cell:
// exact-match accuracy on short answers, ROUGE-L F of "describe" answers against the FULL-cache greedy output
// of the same model, and teacher-forced perplexity of the reference answers (first answer token from the full
// prefill, the compressed cache applied before every later token). With --docs, writes the markdown table
// and an SVG plot there.
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BadInputError, isBadInput, oneLine } from '../errors.js';
import { defaultModelDir, packageRoot } from '../paths.js';
import { Vlm } from '../vlm.js';
import type { Importance, PolicyName } from '../protocol.js';
import { exactMatch, perplexity, rougeL } from '../eval/metrics.js';
import { linePlotSvg } from '../eval/plot.js';
import { machineInfo } from '../eval/machine.js';
import { listOption, parseDevice, parseIntOption, parseKeep, parsePolicy } from './options.js';

export interface Sample {
  image: string;
  question: string;
  answer: string;
  task: string;
}

export interface EvalRow {
  policy: PolicyName;
  keep: number;
  positions: 'absolute' | 'compressed';
  /** Elastic's stage-1 options when not the paper's (importance 'sum', merge on). */
  importance?: Importance;
  merge?: boolean;
  releasedSelection?: boolean;
  accuracy: number;
  perTask: Record<string, number>;
  rougeL: number | null;
  ppl: number;
  samples: number;
  /** Mean kept cache entries over mean tokens seen at the end of each answer. */
  keptShare: number;
}

const DESCRIBE = 'describe';
const ALL_KEEPS = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];

export function readSamples(file: string): Sample[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new BadInputError(`held-out set not found: ${file}`);
  }
  const dir = dirname(file);
  return text.split('\n').filter((l) => l.trim()).map((l, i) => {
    const s = JSON.parse(l) as Sample;
    if (!s.image || !s.question || s.answer === undefined || !s.task) throw new BadInputError(`${file}:${i + 1} lacks image/question/answer/task`);
    return { ...s, image: resolve(dir, s.image) };
  });
}

export interface Variant {
  positions: 'absolute' | 'compressed';
  importance?: Importance;
  merge?: boolean;
  releasedSelection?: boolean;
}

export async function evaluate(vlm: Vlm, samples: Sample[], cells: { policy: PolicyName; keep: number }[],
  variant: Variant, progress: (s: string) => void): Promise<EvalRow[]> {
  const { positions } = variant;
  const eou = vlm.prompt.tokenizer.token_to_id('<end_of_utterance>') ?? vlm.config.eosTokenIds[0];
  const maxTokens = (s: Sample) => (s.task === DESCRIBE ? 320 : 24);
  // The reference for ROUGE-L: the full cache's own greedy description.
  const fullDescribe = new Map<number, string>();
  for (const [i, s] of samples.entries()) {
    if (s.task !== DESCRIBE) continue;
    const r = await vlm.conversation().ask(s.image, s.question, { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: maxTokens(s) } });
    fullDescribe.set(i, r.answer);
  }
  const rows: EvalRow[] = [];
  for (const cell of cells) {
    const t0 = performance.now();
    const elasticOpts = cell.policy === 'elastic' ? { importance: variant.importance, merge: variant.merge, releasedSelection: variant.releasedSelection } : {};
    const cache = { policy: cell.policy, keep: cell.keep, positions, ...elasticOpts };
    const taskHits = new Map<string, [number, number]>();
    const rouges: number[] = [];
    const logProbs: number[] = [];
    let kept = 0;
    let seen = 0;
    for (const [i, s] of samples.entries()) {
      const r = await vlm.conversation().ask(s.image, s.question, { cache, generate: { maxNewTokens: maxTokens(s) } });
      kept += r.cache.perLayerLength[0];
      seen += r.cache.tokensSeen;
      if (s.task === DESCRIBE) {
        rouges.push(rougeL(r.answer, fullDescribe.get(i) ?? ''));
      } else {
        const h = taskHits.get(s.task) ?? [0, 0];
        h[0] += exactMatch(r.answer, s.answer) ? 1 : 0;
        h[1] += 1;
        taskHits.set(s.task, h);
      }
      // Teacher forcing on the reference answer, as the assistant turn writes it.
      const force = [...vlm.prompt.encodeText(` ${s.answer}`), eou];
      const f = await vlm.conversation().ask(s.image, s.question, { cache, generate: { maxNewTokens: 1 }, force });
      logProbs.push(...(f.forcedLogProbs ?? []));
    }
    let hits = 0;
    let total = 0;
    const perTask: Record<string, number> = {};
    for (const [task, [h, n]] of [...taskHits.entries()].sort()) {
      perTask[task] = h / n;
      hits += h;
      total += n;
    }
    const row: EvalRow = {
      policy: cell.policy,
      keep: cell.keep,
      positions,
      ...(cell.policy === 'elastic' && variant.importance ? { importance: variant.importance } : {}),
      ...(cell.policy === 'elastic' && variant.merge === false ? { merge: false } : {}),
      ...(cell.policy === 'elastic' && variant.releasedSelection ? { releasedSelection: true } : {}),
      accuracy: total ? hits / total : NaN,
      perTask,
      rougeL: rouges.length ? rouges.reduce((a, b) => a + b, 0) / rouges.length : null,
      ppl: perplexity(logProbs),
      samples: samples.length,
      keptShare: seen ? kept / seen : 1,
    };
    rows.push(row);
    progress(`${cell.policy} keep=${cell.keep}: accuracy ${row.accuracy.toFixed(3)} rougeL ${row.rougeL?.toFixed(3) ?? '-'} ppl ${row.ppl.toFixed(3)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return rows;
}

/** The first n samples of every task, in file order: a balanced subset for quick runs. */
export function perTask(samples: Sample[], n: number): Sample[] {
  const seen = new Map<string, number>();
  return samples.filter((s) => {
    const k = seen.get(s.task) ?? 0;
    seen.set(s.task, k + 1);
    return k < n;
  });
}

export function markdownTable(rows: EvalRow[]): string {
  const tasks = [...new Set(rows.flatMap((r) => Object.keys(r.perTask)))].sort();
  const head = ['policy', 'keep', 'positions', 'accuracy', 'ROUGE-L', 'PPL', 'kept/seen', ...tasks];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const variant = [r.releasedSelection ? 'released code' : '', r.importance === 'mean' ? 'mean importance' : '', r.merge === false ? 'no merge' : ''].filter(Boolean).join(', ');
    lines.push(`| ${[variant ? `${r.policy} (${variant})` : r.policy, r.keep, r.positions, r.accuracy.toFixed(3), r.rougeL === null ? '-' : r.rougeL.toFixed(3), r.ppl.toFixed(3),
      r.keptShare.toFixed(3), ...tasks.map((t) => (r.perTask[t] === undefined ? '-' : r.perTask[t].toFixed(2)))].join(' | ')} |`);
  }
  return lines.join('\n');
}

export function evalPlot(rows: EvalRow[], metric: 'accuracy' | 'rougeL'): string {
  const policies = [...new Set(rows.map((r) => r.policy))];
  const full = rows.find((r) => r.policy === 'full');
  return linePlotSvg({
    title: metric === 'accuracy' ? 'Exact-match accuracy vs kept budget' : 'ROUGE-L (vs full-cache output) vs kept budget',
    xLabel: 'keep ratio (fraction of the KV cache kept)',
    yLabel: metric === 'accuracy' ? 'accuracy' : 'ROUGE-L F',
    yMin: 0,
    yMax: 1,
    series: [
      ...policies.filter((p) => p !== 'full').map((p) => ({
        name: p,
        points: rows.filter((r) => r.policy === p).map((r) => [r.keep, r[metric] ?? NaN] as [number, number]),
      })),
      ...(full ? [{ name: 'full', points: [[0.1, full[metric] ?? NaN], [1, full[metric] ?? NaN]] as [number, number][] }] : []),
    ],
  });
}

async function main(): Promise<number> {
  try {
    const { values } = parseArgs({
      options: {
        policy: { type: 'string', multiple: true },
        keep: { type: 'string', multiple: true },
        limit: { type: 'string' },
        'per-task': { type: 'string' },
        json: { type: 'boolean' },
        model: { type: 'string' },
        device: { type: 'string' },
        positions: { type: 'string' },
        importance: { type: 'string' },
        merge: { type: 'string' },
        'released-selection': { type: 'boolean' },
        data: { type: 'string' },
        docs: { type: 'string' },
      },
    });
    const policies = (listOption(values.policy) ?? ['full', 'elastic', 'h2o', 'streaming']).map((p) => parsePolicy(p));
    const keeps = (listOption(values.keep) ?? ALL_KEEPS.map(String)).map((k) => parseKeep(k));
    const positions = (values.positions ?? 'absolute') as 'absolute' | 'compressed';
    if (positions !== 'absolute' && positions !== 'compressed') throw new BadInputError('--positions must be absolute or compressed');
    const importance = values.importance as Importance | undefined;
    if (importance !== undefined && importance !== 'sum' && importance !== 'mean') throw new BadInputError('--importance must be sum or mean');
    if (values.merge !== undefined && values.merge !== 'on' && values.merge !== 'off') throw new BadInputError('--merge must be on or off');
    const variant: Variant = { positions, importance, merge: values.merge === undefined ? undefined : values.merge === 'on', releasedSelection: values['released-selection'] };
    const dataFile = resolve(values.data ?? join(packageRoot(), 'data', 'heldout', 'samples.jsonl'));
    let samples = readSamples(dataFile);
    if (values.limit !== undefined) samples = samples.slice(0, parseIntOption('limit', values.limit, samples.length, 1, 1e6));
    if (values['per-task'] !== undefined) samples = perTask(samples, parseIntOption('per-task', values['per-task'], 1, 1, 1e6));
    const cells: { policy: PolicyName; keep: number }[] = [];
    for (const p of policies) {
      if (p === 'full') cells.push({ policy: 'full', keep: 1 });
      else for (const k of keeps) if (k < 1) cells.push({ policy: p, keep: k });
    }
    // At keep 1 a compressing policy never plans anything: its row is the full cache's, by construction.
    const sameAsFull = keeps.includes(1) ? policies.filter((p) => p !== 'full') : [];
    if (sameAsFull.length && !cells.some((c) => c.policy === 'full')) cells.unshift({ policy: 'full', keep: 1 });
    const vlm = await Vlm.load({ modelDir: resolve(values.model ?? defaultModelDir()), device: parseDevice(values.device) });
    const log = (s: string) => process.stderr.write(`${s}\n`);
    const rows = await evaluate(vlm, samples, cells, variant, log);
    const full = rows.find((r) => r.policy === 'full');
    if (full) for (const p of sameAsFull) rows.push({ ...full, policy: p });
    if (full && !policies.includes('full')) rows.splice(rows.indexOf(full), 1);
    await vlm.release();
    const machine = machineInfo();
    if (values.docs) {
      const dir = resolve(values.docs);
      mkdirSync(dir, { recursive: true });
      const suffix = [positions === 'absolute' ? '' : '-compressed', importance === 'mean' ? '-mean' : '', variant.merge === false ? '-nomerge' : '', variant.releasedSelection ? '-released' : ''].join('');
      writeFileSync(join(dir, `eval${suffix}.json`), `${JSON.stringify({ machine, samples: samples.length, rows }, null, 1)}\n`);
      writeFileSync(join(dir, `eval-accuracy${suffix}.svg`), evalPlot(rows, 'accuracy'));
      writeFileSync(join(dir, `eval-rougeL${suffix}.svg`), evalPlot(rows, 'rougeL'));
      writeFileSync(join(dir, `eval-table${suffix}.md`), `Measured on ${machine.cpu} (${machine.cores} cores, ${machine.platform}, Node ${machine.node}), ${machine.date}, commit ${machine.commit}; ${samples.length} held-out samples; positions ${positions}.\n\n${markdownTable(rows)}\n`);
    }
    if (values.json) process.stdout.write(`${JSON.stringify({ samples: samples.length, machine, rows })}\n`);
    else process.stdout.write(`${markdownTable(rows)}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`error: ${oneLine(e)}\n`);
    return isBadInput(e) ? 2 : 1;
  }
}

if (require.main === module) main().then((c) => process.exit(c));
