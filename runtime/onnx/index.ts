export {
  deriveScoredDecoder,
  rewriteForImportance,
  defaultDerivedCacheDir,
  NoAttentionError,
  UnsupportedModelError,
  REWRITE_VERSION,
  IMPORTANCE_PREFIX,
} from './importance.js';
export type { AttentionKind, DerivedDecoder, DeriveOptions, RewriteResult, RewriteOptions } from './importance.js';
