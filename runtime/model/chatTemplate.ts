// Where a model folder keeps its chat template. transformers reads, for a processor-backed model like Idefics3,
// chat_template.jinja first, then the legacy chat_template.json, and the tokenizer's own
// tokenizer_config.json `chat_template` last (processing_utils.py / tokenization_utils_base.py); a folder saved by a
// recent transformers has only the .jinja file. The first one present wins, as there.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors.js';

export const CHAT_TEMPLATE_FILES = ['chat_template.jinja', 'chat_template.json', 'tokenizer_config.json'] as const;

export interface ChatTemplateSource {
  template: string;
  file: (typeof CHAT_TEMPLATE_FILES)[number];
}

/** A `chat_template` value: a string, or a list of named templates (transformers' multi-template form). */
function pick(v: unknown, file: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v.find((t) => t && typeof t === 'object' && t.name === 'default') ?? v[0];
    if (named && typeof named.template === 'string') return named.template;
  }
  throw new BadInputError(`${file}: chat_template must be a string or a list of {name, template}`);
}

export function resolveChatTemplate(dir: string, tokenizerConfig: Record<string, unknown>): ChatTemplateSource {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return { template: readFileSync(jinja, 'utf8'), file: 'chat_template.jinja' };
  const json = join(dir, 'chat_template.json');
  if (existsSync(json)) {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(json, 'utf8'));
    } catch (e) {
      throw new BadInputError(`chat_template.json in ${dir} is malformed: ${(e as Error).message.split('\n')[0]}`);
    }
    const t = pick((v as Record<string, unknown> | null)?.chat_template, 'chat_template.json');
    if (t === undefined) throw new BadInputError(`chat_template.json in ${dir} has no chat_template`);
    return { template: t, file: 'chat_template.json' };
  }
  const t = pick(tokenizerConfig.chat_template, 'tokenizer_config.json');
  if (t === undefined) {
    throw new BadInputError(`model folder ${dir} has no chat template (looked in ${CHAT_TEMPLATE_FILES.join(', ')})`);
  }
  return { template: t, file: 'tokenizer_config.json' };
}
