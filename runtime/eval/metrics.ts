// Scores for the evaluation: exact match on short answers, ROUGE-L F on descriptions (against the full-cache
// output, the paper's protocol), and perplexity from teacher-forced log-probabilities.

/** Lower-case, trim, drop a trailing full stop and collapse spaces: "Red." and "red" are the same answer. */
export function normalizeAnswer(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim().replace(/[.!]+$/, '').trim();
}

export function exactMatch(prediction: string, reference: string): boolean {
  return normalizeAnswer(prediction) === normalizeAnswer(reference);
}

export function words(s: string): string[] {
  return s.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

/** Length of the longest common subsequence of two token lists (O(n*m) time, O(m) memory). */
export function lcsLength(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/** ROUGE-L F1 over word tokens. Two empty texts agree fully. */
export function rougeL(candidate: string, reference: string): number {
  const c = words(candidate);
  const r = words(reference);
  if (c.length === 0 && r.length === 0) return 1;
  const l = lcsLength(c, r);
  if (l === 0) return 0;
  const p = l / c.length;
  const rec = l / r.length;
  return (2 * p * rec) / (p + rec);
}

/** exp of the mean negative log-likelihood over all scored tokens (token-level micro-average). */
export function perplexity(logProbs: number[]): number {
  if (logProbs.length === 0) return NaN;
  let s = 0;
  for (const lp of logProbs) s -= lp;
  return Math.exp(s / logProbs.length);
}
