// The one budget rule every compressing policy uses, so that all of them hold the same number of
// entries at every step and the comparison tables are fair.

/**
 * Cache entries a compressing policy may hold after `tokensSeen` tokens: round(keepRatio x tokensSeen),
 * rounding half up (x.5 -> x+1; a 1e-9 slack absorbs binary error so that e.g. 0.7 x 15 = 10.5 -> 11),
 * and never below `minimum` (what the policy structurally needs, e.g. its always-kept prefix + 1).
 * `keepRatio` is the KEPT fraction (the reference code's `ratio` is 1 - keepRatio).
 */
export function budgetFor(keepRatio: number, tokensSeen: number, minimum = 1): number {
  checkKeepRatio(keepRatio);
  if (!Number.isInteger(tokensSeen) || tokensSeen < 0) {
    throw new RangeError(`tokensSeen must be a non-negative integer, got ${tokensSeen}`);
  }
  return Math.max(minimum, Math.floor(keepRatio * tokensSeen + 0.5 + 1e-9));
}

export function checkKeepRatio(keepRatio: number): void {
  if (!(Number.isFinite(keepRatio) && keepRatio > 0 && keepRatio <= 1)) {
    throw new RangeError(`keepRatio is the fraction of the cache KEPT and must be in (0, 1], got ${keepRatio}`);
  }
}
