// Per-sample results of an evaluation cell, the metrics computed from them, 95 % bootstrap intervals, and the merge
// of shards (`npm run eval -- --shard i/n`, then `--merge a.json b.json ...`). Pure functions: test/unit/evalStats.test.ts.
import { seededRandom } from '../generate/sampling.js';

/** One sample's result in one cell: a short answer's hit, or a description's ROUGE-L; its forced log-probabilities. */
export interface Item {
  /** Index of the sample in the full (unsharded) sample list. */
  i: number;
  task: string;
  /** Short answers: 1 for an exact match, else 0. */
  hit?: number;
  /** Descriptions: ROUGE-L F against the full cache's greedy description. */
  rouge?: number;
  /** Sum of the natural-log probabilities of the forced reference tokens, and their count. */
  lp: number;
  n: number;
  /** Cache entries kept and tokens seen at the end of the answer. */
  kept: number;
  seen: number;
}

export interface Metrics {
  accuracy: number;
  perTask: Record<string, number>;
  rougeL: number | null;
  ppl: number;
  keptShare: number;
  shortAnswers: number;
  descriptions: number;
}

export interface Interval {
  lo: number;
  hi: number;
}

export function metrics(items: Item[]): Metrics {
  const task = new Map<string, [number, number]>();
  let hits = 0;
  let shorts = 0;
  let rouge = 0;
  let descs = 0;
  let lp = 0;
  let n = 0;
  let kept = 0;
  let seen = 0;
  for (const it of items) {
    if (it.hit !== undefined) {
      const t = task.get(it.task) ?? [0, 0];
      t[0] += it.hit;
      t[1]++;
      task.set(it.task, t);
      hits += it.hit;
      shorts++;
    }
    if (it.rouge !== undefined) {
      rouge += it.rouge;
      descs++;
    }
    lp += it.lp;
    n += it.n;
    kept += it.kept;
    seen += it.seen;
  }
  const perTask: Record<string, number> = {};
  for (const [t, [h, c]] of [...task.entries()].sort()) perTask[t] = h / c;
  return {
    accuracy: shorts ? hits / shorts : NaN,
    perTask,
    rougeL: descs ? rouge / descs : null,
    ppl: n ? Math.exp(-lp / n) : NaN,
    keptShare: seen ? kept / seen : 1,
    shortAnswers: shorts,
    descriptions: descs,
  };
}

/** A small deterministic PRNG (the sampler's mulberry32): the same intervals on every machine and rerun. */
export const rng = seededRandom;

/** Percentile (linear interpolation) of a sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return NaN;
  const x = p * (sorted.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

/**
 * 95 % percentile-bootstrap intervals of accuracy, ROUGE-L and perplexity: short answers, descriptions and
 * perplexity's samples are resampled with replacement, each within its own kind (a stratified bootstrap, so the
 * number of short answers and descriptions stays as measured). Perplexity is resampled per sample (a sample's
 * tokens go together). Seeded: deterministic.
 */
export function bootstrap(items: Item[], reps = 2000, seed = 15): { accuracy: Interval | null; rougeL: Interval | null; ppl: Interval | null } {
  const rand = rng(seed);
  const shorts = items.filter((x) => x.hit !== undefined);
  const descs = items.filter((x) => x.rouge !== undefined);
  const draw = <T>(xs: T[], f: (x: T) => number) => {
    let s = 0;
    for (let k = 0; k < xs.length; k++) s += f(xs[Math.floor(rand() * xs.length)]);
    return s / xs.length;
  };
  const acc = new Float64Array(reps);
  const rou = new Float64Array(reps);
  const ppl = new Float64Array(reps);
  for (let r = 0; r < reps; r++) {
    if (shorts.length) acc[r] = draw(shorts, (x) => x.hit!);
    if (descs.length) rou[r] = draw(descs, (x) => x.rouge!);
    let lp = 0;
    let n = 0;
    for (let k = 0; k < items.length; k++) {
      const it = items[Math.floor(rand() * items.length)];
      lp += it.lp;
      n += it.n;
    }
    ppl[r] = n ? Math.exp(-lp / n) : NaN;
  }
  const iv = (a: Float64Array): Interval => {
    a.sort();
    return { lo: percentile(a, 0.025), hi: percentile(a, 0.975) };
  };
  return { accuracy: shorts.length ? iv(acc) : null, rougeL: descs.length ? iv(rou) : null, ppl: items.length ? iv(ppl) : null };
}

/** `--shard i/n` -> [i, n] with 1 <= i <= n; null for a bad value. */
export function parseShard(v: string): [number, number] | null {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  if (!m) return null;
  const i = Number(m[1]);
  const n = Number(m[2]);
  return i >= 1 && n >= 1 && i <= n ? [i, n] : null;
}

/** Shard i of n takes the samples whose index is i - 1 modulo n (every shard gets every task). */
export function shardOf<T>(xs: T[], i: number, n: number): { x: T; index: number }[] {
  return xs.map((x, index) => ({ x, index })).filter((e) => e.index % n === i - 1);
}

/** Two intervals that do not overlap: the only differences the tables claim. */
export function separated(a: Interval | null, b: Interval | null): boolean {
  return !!a && !!b && (a.hi < b.lo || b.hi < a.lo);
}
