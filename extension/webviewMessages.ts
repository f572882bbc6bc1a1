// The messages between the panel's webview and the extension, and the schema validator for every message the
// webview sends. No `vscode` import and no DOM: shared by the extension, the webview bundle and the unit tests.
import {
  isOneOf, KEEP_MAX, KEEP_MIN, POLICIES, type AskResult, type AskWarning, type CacheStats, type ElasticVariant, type Importance, type ImportanceMap, type KeptPositions, type PolicyName,
} from '../runtime/protocol.js';

export const MAX_QUESTION_LENGTH = 4000;
/** Downloaded models an unfamiliar-image warning offers at most (the rest are one Select Model away). */
export const MAX_OFFERS = 3;
/** Pasted images: the types the worker decodes, at most 20 MB (as base64). */
export const PASTE_MIMES: readonly string[] = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp'];
export const MAX_PASTE_BASE64 = Math.ceil((20 * 1024 * 1024) / 3) * 4;

/** Webview -> extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'ask'; question: string }
  | { type: 'stop' }
  | { type: 'setCache'; policy: PolicyName; keep: number }
  | { type: 'showLog' }
  /** The panel's Paste button / Ctrl+V: an image from the user's clipboard, base64. */
  | { type: 'pasteImage'; mime: string; data: string }
  /** The unfamiliar-image warning's offers: Download Model, or the downloaded model of that index in the offer list. */
  | { type: 'downloadModel' }
  | { type: 'useModel'; id: number };

/** Extension -> webview. */
export type ToWebview =
  | {
      type: 'init';
      image: { src: string; name: string; path: string };
      policy: PolicyName;
      keep: number;
      model: string;
      /** Elastic's ranking and merging (the heat map explains what the policy acts on). */
      variant?: ElasticVariant;
      importance?: Importance;
      merge?: boolean;
    }
  | { type: 'settings'; policy: PolicyName; keep: number; model: string; variant?: ElasticVariant; importance?: Importance; merge?: boolean }
  | { type: 'turn'; turn: number; question: string; followUp: boolean; note?: string }
  | { type: 'progress'; stage: string; detail?: string }
  | { type: 'tokens'; turn: number; text: string }
  | { type: 'stats'; stats: CacheStats; kept?: KeptPositions }
  | { type: 'importance'; map: ImportanceMap }
  | { type: 'done'; turn: number; result: Pick<AskResult, 'stopReason' | 'generatedTokens' | 'promptTokens' | 'imageTokens' | 'executionProvider' | 'timings'> }
  | { type: 'error'; turn: number; message: string; code: string }
  /** A turn's warnings (unfamiliar-image), with the downloaded models the panel offers to switch to. */
  | { type: 'warnings'; turn: number; warnings: AskWarning[]; offers: { id: number; label: string }[] }
  | { type: 'busy'; busy: boolean };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields each message type may carry, and their checks. Extra or missing fields make a message invalid. */
const SCHEMA: Record<FromWebview['type'], Record<string, (v: unknown) => boolean>> = {
  ready: {},
  stop: {},
  showLog: {},
  downloadModel: {},
  useModel: {
    id: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < MAX_OFFERS,
  },
  ask: {
    question: (v) => typeof v === 'string' && v.trim().length > 0 && v.length <= MAX_QUESTION_LENGTH,
  },
  pasteImage: {
    mime: (v) => typeof v === 'string' && PASTE_MIMES.includes(v),
    data: (v) => typeof v === 'string' && v.length > 0 && v.length <= MAX_PASTE_BASE64 && /^[A-Za-z0-9+/]+={0,2}$/.test(v),
  },
  setCache: {
    policy: (v) => isOneOf(POLICIES, v),
    keep: (v) => typeof v === 'number' && Number.isFinite(v) && v >= KEEP_MIN && v <= KEEP_MAX,
  },
};

export type ParseResult = { ok: true; message: FromWebview } | { ok: false; error: string };

/** Validates one message from the webview against the schema; never throws. */
export function parseWebviewMessage(m: unknown): ParseResult {
  if (!isObj(m)) return { ok: false, error: 'message is not an object' };
  const type = m.type;
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(SCHEMA, type)) {
    return { ok: false, error: `unknown message type ${JSON.stringify(type)?.slice(0, 40)}` };
  }
  const fields = SCHEMA[type as FromWebview['type']];
  for (const key of Object.keys(m)) {
    if (key !== 'type' && !Object.prototype.hasOwnProperty.call(fields, key)) {
      return { ok: false, error: `${type}: unexpected field ${JSON.stringify(key).slice(0, 40)}` };
    }
  }
  for (const [key, check] of Object.entries(fields)) {
    if (!check(m[key])) return { ok: false, error: `${type}: invalid or missing field ${key}` };
  }
  return { ok: true, message: m as unknown as FromWebview };
}

/**
 * Coalesces frequent updates: at most one call per `intervalMs`, the pending value always delivered (trailing).
 * By default a newer value replaces the pending one (cache stats); `combine` joins them instead (token text).
 */
export class Throttle<T> {
  private last = -Infinity;
  private pending: { value: T } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (value: T) => void,
    private readonly now: () => number = Date.now,
    private readonly combine: (pending: T, value: T) => T = (_pending, value) => value,
  ) {}

  push(value: T): void {
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0 && !this.timer) {
      this.last = this.now();
      this.emit(value);
      return;
    }
    this.pending = { value: this.pending ? this.combine(this.pending.value, value) : value };
    if (!this.timer) this.timer = setTimeout(() => this.flush(), Math.max(0, wait));
  }

  /** Delivers the pending value now (e.g. when a turn ends). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const p = this.pending;
    this.pending = null;
    if (p) {
      this.last = this.now();
      this.emit(p.value);
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = null;
  }
}
