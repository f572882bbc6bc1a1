// Streaming text from generated token ids. Re-decoding the whole answer at every step costs O(n) a step
// (0.13 ms on average over a 374-token answer here, ~1.5 ms at 4,000 tokens); this decodes only the tokens
// since the last committed point, with one token before them as context so that decoders which treat the
// first token specially (a leading space dropped, a word-start marker) render the boundary as in context.

/** Commit the text every this many tokens (it must not end inside a multi-byte character). */
const COMMIT_EVERY = 16;
const REPLACEMENT = '\uFFFD';

export class TextStream {
  private readonly ids: number[] = [];
  /** Tokens [0, base) are committed: their text is `baseText`. */
  private base = 0;
  private baseText = '';
  /** The text emitted so far. */
  private text = '';

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** Adds one token; returns the new text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const full = this.current();
    // An incomplete UTF-8 sequence decodes to U+FFFD; wait for the bytes that complete it.
    if (full.endsWith(REPLACEMENT) || full.length <= this.text.length) return '';
    const delta = full.slice(this.text.length);
    this.text = full;
    if (this.ids.length - this.base >= COMMIT_EVERY) {
      this.base = this.ids.length;
      this.baseText = full;
    }
    return delta;
  }

  /** The text of every token pushed so far, as one decode of all of them would give it. */
  private current(): string {
    if (this.base === 0) return this.decode(this.ids);
    const context = this.decode(this.ids.slice(this.base - 1, this.base));
    const tail = this.decode(this.ids.slice(this.base - 1));
    // A decoder for which a prefix of tokens does not decode to a prefix of the text: decode everything.
    if (!tail.startsWith(context)) return this.decode(this.ids);
    return this.baseText + tail.slice(context.length);
  }
}
