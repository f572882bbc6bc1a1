// Prompt building: the model's own chat template (@huggingface/jinja), <image> expanded into the Idefics3
// tile / row / global token structure, tokenized with @huggingface/tokenizers. The user's question is always
// tokenized as plain text: special-token strings typed by a user never become control tokens.
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { BadInputError } from '../errors.js';
import type { ModelConfig } from './modelFolder.js';

export const MAX_QUESTION_CHARS = 8000;

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: ({ type: 'image' } | { type: 'text'; text: string })[];
}

export interface ImageLayout {
  rows: number;
  cols: number;
}

// Stands in for the question while the template renders, so the question's text never passes through
// the special-token splitter. Private-use characters that no template or question contains.
const SENTINEL = '\uE000Q\uE001';

export class PromptBuilder {
  readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly specials: string[];
  private readonly fake: string;
  private readonly imageToken: string;
  private readonly globalToken: string;

  constructor(private readonly cfg: ModelConfig) {
    try {
      this.tokenizer = new Tokenizer(cfg.tokenizerJson, cfg.tokenizerConfig);
    } catch (e) {
      throw new BadInputError(`tokenizer.json in ${cfg.dir} could not be loaded: ${(e as Error).message}`);
    }
    try {
      this.template = new Template(cfg.chatTemplate);
    } catch (e) {
      throw new BadInputError(`${cfg.chatTemplateFile ?? 'tokenizer_config.json'} chat_template does not parse: ${(e as Error).message}`);
    }
    // Every id the decoder can emit must decode: a tokenizer smaller than the model's vocabulary is the wrong one.
    const size = this.tokenizer.get_vocab(true).size;
    if (size < cfg.vocabSize) {
      throw new BadInputError(`tokenizer.json in ${cfg.dir} has ${size} tokens but config.json says vocab_size ${cfg.vocabSize}`);
    }
    const tok = (id: number) => this.tokenizer.id_to_token(id);
    const imageToken = tok(cfg.imageTokenId);
    if (!imageToken) throw new BadInputError(`tokenizer.json has no token for image_token_id ${cfg.imageTokenId}`);
    this.imageToken = imageToken;
    this.fake = this.requireToken('<fake_token_around_image>');
    this.globalToken = this.requireToken('<global-img>');
    this.specials = [...this.tokenizer.get_added_tokens_decoder().values()]
      .map((t) => t.content)
      .filter((s) => s.length > 1)
      .sort((a, b) => b.length - a.length);
  }

  private requireToken(s: string): string {
    if (this.tokenizer.token_to_id(s) === undefined) throw new BadInputError(`tokenizer.json has no ${s} token`);
    return s;
  }

  /** The expanded image token string for one image split into rows x cols tiles (0 x 0: unsplit). */
  imageString(layout: ImageLayout): string {
    const n = this.cfg.imageSeqLen;
    const run = this.imageToken.repeat(n);
    if (layout.rows === 0 && layout.cols === 0) return `${this.fake}${this.globalToken}${run}${this.fake}`;
    let s = '';
    for (let r = 1; r <= layout.rows; r++) {
      for (let c = 1; c <= layout.cols; c++) s += `${this.fake}<row_${r}_col_${c}>${run}`;
      s += '\n';
    }
    return `${s}\n${this.fake}${this.globalToken}${run}${this.fake}`;
  }

  render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    return this.template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.cfg.tokenizerConfig.bos_token ?? '',
      eos_token: this.cfg.tokenizerConfig.eos_token ?? '',
    });
  }

  /**
   * Token ids for `text` in which `question` stands at SENTINEL and `<image>` (the template's placeholder)
   * expands to `images[i]` in order.
   */
  encodeRendered(rendered: string, question: string, images: ImageLayout[]): number[] {
    const parts = rendered.split(SENTINEL);
    if (parts.length !== 2) throw new Error('chat template dropped or repeated the question');
    const [before, after] = parts;
    const q = this.encodeText(question);
    // The character limit does not bound the tokens (digits are one token each), and the prefill's memory grows
    // with the square of the prompt length: a question may take at most the tokenizer's model_max_length.
    const max = this.maxQuestionTokens;
    if (q.length > max) throw new BadInputError(`question is ${q.length} tokens; this model takes at most ${max}`);
    return [...this.encodeControl(before, images), ...q, ...this.encodeControl(after, [])];
  }

  /** tokenizer_config.json model_max_length (transformers writes ~1e30 for "none"), else 2048. */
  get maxQuestionTokens(): number {
    const m = Number(this.cfg.tokenizerConfig.model_max_length);
    return Number.isInteger(m) && m > 0 && m <= 1_000_000 ? m : 2048;
  }

  /** Template-produced text: special tokens are control tokens, <image> expands. */
  private encodeControl(text: string, images: ImageLayout[]): number[] {
    let i = 0;
    const expanded = text.replace(/<image>/g, () => {
      const layout = images[i++];
      if (!layout) throw new Error('more <image> placeholders than images');
      return this.imageString(layout);
    });
    if (i !== images.length) throw new Error(`the chat template placed ${i} of ${images.length} images`);
    return expanded === '' ? [] : this.tokenizer.encode(expanded, { add_special_tokens: false }).ids;
  }

  /** User text: any special-token string is broken up so it tokenizes as ordinary characters. */
  encodeText(text: string): number[] {
    if (text === '') return [];
    const ids: number[] = [];
    let rest = text;
    while (rest.length > 0) {
      let at = -1;
      let hit = '';
      for (const s of this.specials) {
        const k = rest.indexOf(s);
        if (k !== -1 && (at === -1 || k < at)) {
          at = k;
          hit = s;
        }
      }
      if (at === -1) {
        ids.push(...this.plain(rest));
        break;
      }
      // Encode up to and including the first character of the special string, then continue after it.
      ids.push(...this.plain(rest.slice(0, at + 1)));
      rest = rest.slice(at + 1);
      void hit;
    }
    return ids;
  }

  private plain(s: string): number[] {
    return s === '' ? [] : this.tokenizer.encode(s, { add_special_tokens: false }).ids;
  }

  /** The first turn: one image and a question. */
  firstTurn(question: string, layout: ImageLayout): { ids: number[]; messages: ChatMessage[]; text: string } {
    const q = checkQuestion(question);
    const messages: ChatMessage[] = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: q }] }];
    const rendered = this.render([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: SENTINEL }] }], true);
    return { ids: this.encodeRendered(rendered, q, [layout]), messages, text: rendered.replace(SENTINEL, q) };
  }

  /**
   * A follow-up: the ids to append to a cache that holds the conversation `history` (its last message is the
   * assistant's answer as generated, whose closing tokens were not fed yet) for a new question.
   */
  followUp(history: ChatMessage[], question: string): { ids: number[]; messages: ChatMessage[] } {
    const q = checkQuestion(question);
    const last = history[history.length - 1];
    if (!last || last.role !== 'assistant') throw new Error('a follow-up needs a finished assistant turn');
    const answer = last.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
    const open = this.render(history.slice(0, -1), true);
    const prev = this.render(history, false);
    const full = this.render([...history, { role: 'user', content: [{ type: 'text', text: SENTINEL }] }], true);
    if (!prev.startsWith(open) || !full.startsWith(prev)) throw new Error('chat template is not prefix-stable across turns');
    // What the template writes after the answer text (e.g. "<end_of_utterance>\n") closes the turn.
    const turn = prev.slice(open.length);
    const k = turn.lastIndexOf(answer);
    const tail = k === -1 ? '' : turn.slice(k + answer.length);
    const ids = [...this.encodeControl(tail, []), ...this.encodeRendered(full.slice(prev.length), q, [])];
    return { ids, messages: [...history, { role: 'user', content: [{ type: 'text', text: q }] }] };
  }

  decode(ids: number[], skipSpecial = true): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: skipSpecial });
  }
}

/** Questions: non-empty, bounded, control characters (C0 other than tab/newline, DEL, C1) and private-use characters removed. */
export function checkQuestion(question: string): string {
  if (typeof question !== 'string') throw new BadInputError('question must be text');
  if (question.length > MAX_QUESTION_CHARS) {
    throw new BadInputError(`question is ${question.length} characters; the limit is ${MAX_QUESTION_CHARS}`);
  }
  // eslint-disable-next-line no-control-regex
  const cleaned = question.replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\uE000-\uF8FF]/g, '').trim();
  if (cleaned === '') throw new BadInputError('question is empty');
  return cleaned;
}
