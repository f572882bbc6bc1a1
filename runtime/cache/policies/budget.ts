// The one budget rule every compressing policy uses, so that all of them hold the same number of
// entries at every step and the comparison tables are fair.

/**
 * Cache entries a compressing policy may hold after `tokensSeen` tokens: round(keep x tokensSeen),
 * rounding half up (x.5 -> x+1; a 1e-9 slack absorbs binary error so that e.g. 0.7 x 15 = 10.5 -> 11),
 * and never below `minimum` (what the policy structurally needs, e.g. its always-kept prefix + 1).
 * `keep` is the KEPT fraction (the reference code's `ratio` is 1 - keep).
 */
export function budgetFor(keep: number, tokensSeen: number, minimum = 1): number {
  checkKeep(keep);
  if (!Number.isInteger(tokensSeen) || tokensSeen < 0) {
    throw new RangeError(`tokensSeen must be a non-negative integer, got ${tokensSeen}`);
  }
  return Math.max(minimum, Math.floor(keep * tokensSeen + 0.5 + 1e-9));
}

/**
 * Entries a decode step evicts when the cache holds `len` against `budget`: none within it; past it, the excess plus
 * `batch - 1` more, at most `room` (what the policy can evict in one plan). A store whose every compaction is a run
 * of its own (the GPU's, cache/gpuStore.ts) asks for batch > 1 and so compacts once every `batch` steps, never
 * holding more than the budget; the CPU compacts in place every step (batch 1: the methods as written).
 */
export function stepEvictions(len: number, budget: number, batch = 1, room = Infinity): number {
  const over = len - budget;
  if (over <= 0) return 0;
  return Math.max(over, Math.min(over + Math.max(1, Math.floor(batch)) - 1, room));
}

export function checkKeep(keep: number): void {
  if (!(Number.isFinite(keep) && keep > 0 && keep <= 1)) {
    throw new RangeError(`keep is the fraction of the cache KEPT and must be in (0, 1], got ${keep}`);
  }
}
