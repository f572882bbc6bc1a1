// npm run eval -- [--policy P[,P]] [--keep K[,K]] [--limit N | --per-task N] [--json] [--model DIR] [--device D]
//   [--positions absolute|compressed] [--docs DIR] [--data FILE|DIR] [--per-head on|off] [--similar on|off] [--mass on|off]
//   (Elastic's knobs: cli/evalVariant.ts)
//   npm run eval -- --familiarity [DIR ...]: the unfamiliar-image flag rate per set (default data/heldout,
//   data/unfamiliar, data/heldout-real) and the accuracy by flag
// Runs the held-out sets (data/heldout and data/heldout-real, drawn by other renderers; --data: one samples.jsonl,
// or a folder holding one) through the runtime for each policy x keep cell, one table per set:
// exact-match accuracy on short answers, ROUGE-L F of "describe" answers against the FULL-cache greedy output
// of the same model, and teacher-forced perplexity of the reference answers (first answer token from the full
// prefill, the compressed cache applied before every later token). With --docs, writes the markdown table
// and an SVG plot there.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BadInputError, isBadInput, oneLine } from '../errors.js';
import { defaultModelDir, packageRoot } from '../paths.js';
import { Vlm } from '../vlm.js';
import type { PolicyName } from '../protocol.js';
import { exactMatch, perplexity, rougeL } from '../eval/metrics.js';
import { linePlotSvg } from '../eval/plot.js';
import { machineInfo } from '../eval/machine.js';
import { listOption, parseDevice, parseIntOption, parseKeep, parsePolicy } from './options.js';
import { bootstrap, metrics, parseShard, shardOf, type Interval, type Item } from './evalStats.js';
import { defaultFamiliaritySets, familiarityReport } from './familiarityRates.js';
import { VARIANT_OPTIONS, variantOptions, variantLabel, cellCache, cellLabel, type Values, type Variant } from './evalVariant.js';

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
  /** Elastic's method and options when they are not the default (see variantLabel). */
  variant?: string;
  /** The multi-turn cell: the metrics are the SECOND question's, asked on the cache the first one left. */
  multiTurn?: boolean;
  accuracy: number;
  perTask: Record<string, number>;
  rougeL: number | null;
  ppl: number;
  samples: number;
  /** Mean kept cache entries over mean tokens seen at the end of each answer. */
  keptShare: number;
  /** 95 % bootstrap intervals (evalStats.ts). */
  ci?: { accuracy: Interval | null; rougeL: Interval | null; ppl: Interval | null };
  /** Per-sample results, for intervals and the shard merge. */
  items?: Item[];
}

const DESCRIBE = 'describe';
const ALL_KEEPS = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];

/** The samples file of --data: the file itself, or a folder's samples.jsonl. */
export function samplesFile(path: string): string {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    // a missing path: readSamples says so
  }
  return dir ? join(path, 'samples.jsonl') : path;
}

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

/**
 * Multi-turn pairs: for every image with two or more short questions, the first one, then the next short question
 * of a DIFFERENT task (another part of the image: a count then a colour, a title then a button, ...).
 */
export function multiTurnPairs(samples: Sample[]): [number, number][] {
  const byImage = new Map<string, number[]>();
  samples.forEach((s, i) => {
    if (s.task === DESCRIBE) return;
    const l = byImage.get(s.image) ?? [];
    l.push(i);
    byImage.set(s.image, l);
  });
  const pairs: [number, number][] = [];
  for (const l of byImage.values()) {
    const a = l[0];
    const b = l.find((j) => samples[j].task !== samples[a].task);
    if (b !== undefined) pairs.push([a, b]);
  }
  return pairs.sort((x, y) => x[0] - y[0]);
}

export interface EvalPlan {
  /** Sample indices (into `samples`) this run evaluates; all by default (a shard: a subset). */
  indices?: number[];
  /** Run the multi-turn cell instead: pairs of sample indices. */
  pairs?: [number, number][];
}

export async function evaluate(vlm: Vlm, samples: Sample[], cells: { policy: PolicyName; keep: number }[],
  variant: Variant, progress: (s: string) => void, plan: EvalPlan = {}): Promise<EvalRow[]> {
  const { positions } = variant;
  const eou = vlm.prompt.tokenizer.token_to_id('<end_of_utterance>') ?? vlm.config.eosTokenIds[0];
  const maxTokens = (s: Sample) => (s.task === DESCRIBE ? 320 : 24);
  const indices = plan.indices ?? samples.map((_, i) => i);
  const forceOf = (s: Sample) => [...vlm.prompt.encodeText(` ${s.answer}`), eou];
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  // The reference for ROUGE-L: the full cache's own greedy description.
  const fullDescribe = new Map<number, string>();
  if (!plan.pairs) {
    for (const i of indices) {
      const s = samples[i];
      if (s.task !== DESCRIBE) continue;
      const r = await vlm.conversation().ask(s.image, s.question, { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: maxTokens(s) } });
      fullDescribe.set(i, r.answer);
    }
  }
  const rows: EvalRow[] = [];
  for (const cell of cells) {
    const t0 = performance.now();
    const cache = cellCache(cell.policy, cell.keep, variant);
    const items: Item[] = [];
    if (plan.pairs) {
      for (const [a, b] of plan.pairs) {
        const first = samples[a];
        const second = samples[b];
        const c = vlm.conversation();
        await c.ask(first.image, first.question, { cache, generate: { maxNewTokens: maxTokens(first) } });
        const r = await c.followUp(second.question, { generate: { maxNewTokens: maxTokens(second) } });
        const f = vlm.conversation();
        await f.ask(first.image, first.question, { cache, generate: { maxNewTokens: maxTokens(first) } });
        const lp = (await f.followUp(second.question, { generate: { maxNewTokens: 1 }, force: forceOf(second) })).forcedLogProbs ?? [];
        items.push({ i: b, task: second.task, hit: exactMatch(r.answer, second.answer) ? 1 : 0, lp: sum(lp), n: lp.length, kept: r.cache.perLayerLength[0], seen: r.cache.tokensSeen });
        c.dispose();
        f.dispose();
      }
    } else {
      for (const i of indices) {
        const s = samples[i];
        const r = await vlm.conversation().ask(s.image, s.question, { cache, generate: { maxNewTokens: maxTokens(s) } });
        // Teacher forcing on the reference answer, as the assistant turn writes it.
        const f = await vlm.conversation().ask(s.image, s.question, { cache, generate: { maxNewTokens: 1 }, force: forceOf(s) });
        const lp = f.forcedLogProbs ?? [];
        const it: Item = { i, task: s.task, lp: sum(lp), n: lp.length, kept: r.cache.perLayerLength[0], seen: r.cache.tokensSeen };
        if (s.task === DESCRIBE) it.rouge = rougeL(r.answer, fullDescribe.get(i) ?? '');
        else it.hit = exactMatch(r.answer, s.answer) ? 1 : 0;
        items.push(it);
      }
    }
    const row = makeRow(cell.policy, cell.keep, positions, cellLabel(cell.policy, variant), !!plan.pairs, items);
    rows.push(row);
    progress(`${cell.policy}${row.variant ? ` (${row.variant})` : ''}${row.multiTurn ? ' multi-turn' : ''} keep=${cell.keep}: accuracy ${fmtCi(row.accuracy, row.ci?.accuracy)} rougeL ${row.rougeL === null ? '-' : fmtCi(row.rougeL, row.ci?.rougeL)} ppl ${fmtCi(row.ppl, row.ci?.ppl)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return rows;
}

export function makeRow(policy: PolicyName, keep: number, positions: 'absolute' | 'compressed', variant: string, multiTurn: boolean, items: Item[]): EvalRow {
  const m = metrics(items);
  return {
    policy, keep, positions,
    ...(variant ? { variant } : {}),
    ...(multiTurn ? { multiTurn: true } : {}),
    accuracy: m.accuracy, perTask: m.perTask, rougeL: m.rougeL, ppl: m.ppl, samples: items.length, keptShare: m.keptShare,
    ci: bootstrap(items), items,
  };
}

function fmtCi(v: number, ci: Interval | null | undefined): string {
  return ci ? `${v.toFixed(3)} [${ci.lo.toFixed(3)}, ${ci.hi.toFixed(3)}]` : v.toFixed(3);
}

/** Merges shard outputs: rows with one key (policy, keep, positions, variant, multi-turn) pool their items. */
export function mergeShards(files: { rows: EvalRow[] }[]): EvalRow[] {
  const groups = new Map<string, { row: EvalRow; items: Map<number, Item> }>();
  for (const f of files) {
    for (const r of f.rows) {
      if (!r.items) throw new BadInputError(`a row (${r.policy} keep ${r.keep}) has no per-sample items: not an output of this eval`);
      const key = JSON.stringify([r.policy, r.keep, r.positions, r.variant ?? '', !!r.multiTurn]);
      const g = groups.get(key) ?? { row: r, items: new Map<number, Item>() };
      for (const it of r.items) g.items.set(it.i, it);
      groups.set(key, g);
    }
  }
  return [...groups.values()].map(({ row, items }) =>
    makeRow(row.policy, row.keep, row.positions, row.variant ?? '', !!row.multiTurn, [...items.values()].sort((a, b) => a.i - b.i)));
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
  const head = ['policy', 'keep', 'positions', 'accuracy [95% CI]', 'ROUGE-L [95% CI]', 'PPL [95% CI]', 'n', 'kept/seen', ...tasks];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  const f = (v: number | null, ci: Interval | null | undefined) => (v === null ? '-' : ci ? `${v.toFixed(3)} [${ci.lo.toFixed(3)}, ${ci.hi.toFixed(3)}]` : v.toFixed(3));
  for (const r of rows) {
    const name = `${r.policy}${r.variant ? ` (${r.variant})` : ''}${r.multiTurn ? ', 2nd question' : ''}`;
    lines.push(`| ${[name, r.keep, r.positions, f(r.accuracy, r.ci?.accuracy), f(r.rougeL, r.ci?.rougeL), f(r.ppl, r.ci?.ppl), r.samples,
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

/** The error for cells whose policy needs attention importance the model cannot give (null when none). */
export function needsImportance(cells: { policy: PolicyName }[], hasScores: boolean, model: string): BadInputError | null {
  const need = [...new Set(cells.map((c) => c.policy).filter((p) => p !== 'full' && p !== 'streaming'))];
  if (hasScores || !need.length) return null;
  return new BadInputError(`the attention importance of ${model} cannot be read (no attention the rewrite can find), so ${need.join(', ')} cannot run; use --policy full,streaming`);
}

const DEFAULT_POLICIES = ['full', 'elastic', 'h2o', 'streaming', 'snapkv'];

/** The tables and plots of one run under `dir`, named after its variant. */
function writeDocs(dir: string, variant: Variant, multiTurn: boolean, r: { machine: ReturnType<typeof machineInfo>; evaluated: number; pairs: boolean; rows: EvalRow[] }): void {
  const { machine, evaluated, rows } = r;
  const positions = variant.positions;
  mkdirSync(dir, { recursive: true });
  const label = variantLabel(variant);
  const suffix = [positions === 'absolute' ? '' : '-compressed', label ? `-${label.replace(/[^a-z0-9]+/gi, '-')}` : '', multiTurn ? '-multiturn' : ''].join('');
  writeFileSync(join(dir, `eval${suffix}.json`), `${JSON.stringify({ machine, samples: evaluated, rows }, null, 1)}\n`);
  writeFileSync(join(dir, `eval-accuracy${suffix}.svg`), evalPlot(rows, 'accuracy'));
  writeFileSync(join(dir, `eval-rougeL${suffix}.svg`), evalPlot(rows, 'rougeL'));
  writeFileSync(join(dir, `eval-table${suffix}.md`), `Measured on ${machine.cpu} (${machine.cores} cores, ${machine.platform}, Node ${machine.node}), ${machine.date}, commit ${machine.commit}; ${evaluated} held-out ${r.pairs ? 'question pairs' : 'samples'}; positions ${positions}.\n\n${markdownTable(rows)}\n`);
}

/** The grid's cells: the full cache once, every compressing policy at each keep below 1. */
function cellsFor(policies: PolicyName[], keeps: number[]): { cells: { policy: PolicyName; keep: number }[]; sameAsFull: PolicyName[] } {
  const cells: { policy: PolicyName; keep: number }[] = [];
  for (const p of policies) {
    if (p === 'full') cells.push({ policy: 'full', keep: 1 });
    else for (const k of keeps) if (k < 1) cells.push({ policy: p, keep: k });
  }
  // At keep 1 a compressing policy never plans anything: its row is the full cache's, by construction.
  const sameAsFull = keeps.includes(1) ? policies.filter((p) => p !== 'full') : [];
  if (sameAsFull.length && !cells.some((c) => c.policy === 'full')) cells.unshift({ policy: 'full', keep: 1 });
  return { cells, sameAsFull };
}

/** --merge-shards: one table from the shards' JSON files (rows merged by cell, answers pooled). */
function mergeShardsCommand(positionals: string[], json: boolean, out: (s: string) => void): number {
  if (!positionals.length) throw new BadInputError('--merge-shards needs the shard JSON files as arguments');
  const files = positionals.map((p) => {
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as { rows: EvalRow[]; machine?: unknown; samples?: number };
    } catch (e) {
      throw new BadInputError(`cannot read shard ${p}: ${oneLine(e)}`);
    }
  });
  const rows = mergeShards(files);
  out(json ? `${JSON.stringify({ machine: files[0].machine, shards: files.length, rows })}\n` : `${markdownTable(rows)}\n`);
  return 0;
}

/** The held-out sets evaluated when --data is not given: data/heldout, and data/heldout-real (real renderers) too. */
function defaultSets(single: boolean): string[] {
  const root = join(packageRoot(), 'data');
  const sets = [join(root, 'heldout'), join(root, 'heldout-real')].filter((d) => existsSync(join(d, 'samples.jsonl')));
  return single ? sets.slice(0, 1) : sets;
}

function selectSamples(samples: Sample[], limit?: string, perTaskN?: string): Sample[] {
  if (limit !== undefined) samples = samples.slice(0, parseIntOption('limit', limit, samples.length, 1, 1e6));
  if (perTaskN !== undefined) samples = perTask(samples, parseIntOption('per-task', perTaskN, 1, 1, 1e6));
  return samples;
}

function planFor(samples: Sample[], multiTurn: boolean, shard: [number, number] | null): EvalPlan {
  const plan: EvalPlan = {};
  if (multiTurn) {
    const pairs = multiTurnPairs(samples);
    plan.pairs = shard ? shardOf(pairs, shard[0], shard[1]).map((e) => e.x) : pairs;
  } else if (shard) plan.indices = shardOf(samples, shard[0], shard[1]).map((e) => e.index);
  return plan;
}

/** --familiarity [DIR ...]: the flag rate of each set under the model's familiarity.json (familiarityRates.ts). */
async function familiarityCommand(dirs: string[], values: Values, out: (s: string) => void): Promise<number> {
  const vlm = await Vlm.load({ modelDir: resolve((values.model as string | undefined) ?? defaultModelDir()), device: parseDevice(values.device as string | undefined), scores: false });
  try {
    const r = await familiarityReport(vlm, dirs.length ? dirs : defaultFamiliaritySets(packageRoot()));
    out(values.json ? `${JSON.stringify({ machine: machineInfo(), rates: r.rates, accuracy: r.accuracy })}\n` : `${r.markdown}\n`);
    return 0;
  } finally {
    await vlm.release();
  }
}

export async function main(argv = process.argv.slice(2), out = (s: string) => process.stdout.write(s), err = (s: string) => process.stderr.write(s)): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        policy: { type: 'string', multiple: true },
        keep: { type: 'string', multiple: true },
        limit: { type: 'string' },
        'per-task': { type: 'string' },
        json: { type: 'boolean' },
        model: { type: 'string' },
        device: { type: 'string' },
        ...VARIANT_OPTIONS,
        'multi-turn': { type: 'boolean' },
        shard: { type: 'string' },
        'merge-shards': { type: 'boolean' },
        data: { type: 'string' },
        docs: { type: 'string' },
        familiarity: { type: 'boolean' },
      },
    });
    if (values['merge-shards']) return mergeShardsCommand(positionals, !!values.json, out);
    if (values.familiarity) return await familiarityCommand(positionals, values, out);
    if (positionals.length) throw new BadInputError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const policies = (listOption(values.policy) ?? DEFAULT_POLICIES).map((p) => parsePolicy(p));
    const keeps = (listOption(values.keep) ?? ALL_KEEPS.map(String)).map((k) => parseKeep(k));
    const variant = variantOptions(values);
    const shard = values.shard === undefined ? null : parseShard(values.shard);
    if (values.shard !== undefined && !shard) throw new BadInputError(`--shard must be i/n with 1 <= i <= n, got ${JSON.stringify(values.shard)}`);
    const { cells, sameAsFull } = cellsFor(policies, keeps);
    // With no --data, every held-out set there is (one model load); a shard, a multi-turn run or --docs is of one set.
    const single = !!(values.shard || values['multi-turn'] || values.docs);
    const sets = listOption(values.data ? [values.data] : undefined) ?? defaultSets(single);
    if (sets.length > 1 && single) throw new BadInputError('--shard, --multi-turn and --docs take one --data set');
    const vlm = await Vlm.load({ modelDir: resolve(values.model ?? defaultModelDir()), device: parseDevice(values.device) });
    try {
      const noScores = needsImportance(cells, vlm.scoreOutputs !== null, values.model ?? 'the default model');
      if (noScores) throw noScores;
      const results: { data: string; samples: number; pairs: boolean; rows: EvalRow[] }[] = [];
      for (const set of sets) {
        const samples = selectSamples(readSamples(samplesFile(resolve(set))), values.limit, values['per-task']);
        const plan = planFor(samples, !!values['multi-turn'], shard);
        const rows = await evaluate(vlm, samples, cells, variant, (s) => err(`${s}\n`), plan);
        const full = rows.find((r) => r.policy === 'full');
        if (full) for (const p of sameAsFull) rows.push({ ...full, policy: p });
        if (full && !policies.includes('full')) rows.splice(rows.indexOf(full), 1);
        const evaluated = plan.pairs ? plan.pairs.length : plan.indices ? plan.indices.length : samples.length;
        results.push({ data: set, samples: evaluated, pairs: !!plan.pairs, rows });
      }
      const machine = machineInfo();
      if (values.docs) writeDocs(resolve(values.docs), variant, !!values['multi-turn'], { machine, evaluated: results[0].samples, ...results[0] });
      if (values.json) {
        const one = (r: (typeof results)[number]) => ({ data: r.data, samples: r.samples, shard: values.shard ?? null, machine, rows: r.rows });
        out(`${JSON.stringify(results.length === 1 ? one(results[0]) : { machine, sets: results.map(one) })}\n`);
      } else out(`${results.map((r) => (results.length > 1 ? `## ${r.data} (${r.samples} samples)\n\n` : '') + markdownTable(r.rows)).join('\n\n')}\n`);
    } finally {
      await vlm.release();
    }
    return 0;
  } catch (e) {
    err(`error: ${oneLine(e)}\n`);
    return isBadInput(e) || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

if (require.main === module) main().then((c) => process.exit(c));
