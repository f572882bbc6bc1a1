// The extension's default keep and the lower edge of the measured safe range (docs/evaluation.md, "Defaults").
// One place, re-exported by runtime/protocol.ts, so the settings default and the panel's warning agree.
// Measured in quick mode (--per-task 5: 50 short answers, 5 descriptions) with the product's Elastic; the full-set
// run (scripts/device/eval-shards.sh) should confirm or move them.

/**
 * The default kept fraction: the lowest measured budget at which the product's Elastic stays within 1 point of the
 * full cache's accuracy (0.7: 0.960 vs 0.960, ROUGE-L 0.955; 0.5 was 0.940, 2 points below).
 */
export const DEFAULT_KEEP = 0.7;

/**
 * Below this kept fraction the panel warns that answers may lose detail: the lowest measured budget whose accuracy
 * interval still contains the full cache's accuracy and whose descriptions keep ROUGE-L >= 0.90 against the full
 * cache (0.5: 0.940 [0.860, 1.000], ROUGE-L 0.908; at 0.3: 0.840 [0.720, 0.940], ROUGE-L 0.710).
 */
export const SAFE_KEEP_MIN = 0.5;

/** True when `keep` is below the measured safe range (the panel's warning). Only the product's Elastic was measured for it. */
export function isBelowSafeRange(keep: number): boolean {
  return keep < SAFE_KEEP_MIN - 1e-9;
}
