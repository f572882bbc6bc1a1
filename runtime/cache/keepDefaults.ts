// The extension's default keep and the lower edge of the measured safe range (docs/evaluation.md, "Defaults").
// One place, re-exported by runtime/protocol.ts, so the settings default and the panel's warning agree.

/** The default kept fraction: the lowest measured budget at which the product's Elastic stays within 1 point of the full cache's accuracy. */
export const DEFAULT_KEEP = 0.3;

/** Below this kept fraction the panel warns that answers may lose detail (the product's Elastic, measured). */
export const SAFE_KEEP_MIN = 0.3;

/** True when `keep` is below the measured safe range (the panel's warning). Only the product's Elastic was measured for it. */
export function isBelowSafeRange(keep: number): boolean {
  return keep < SAFE_KEEP_MIN - 1e-9;
}
