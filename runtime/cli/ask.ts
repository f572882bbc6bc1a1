// npm run ask -- IMAGE "QUESTION" [--model DIR] [--device D] [--max-new-tokens N] [--policy P] [--keep K]
//   [--detail global|low|medium|full] [--positions absolute|compressed] [--importance sum|mean] [--merge on|off] [--dtype fp16] [--json] [--in-process] [--verbose]
// Streams the answer to stdout; with --json prints one JSON object at the end instead.
// Exit codes: 0 ok, 2 bad input (image, question, options, model folder), 1 internal failure.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { BadInputError, isBadInput, oneLine } from '../errors.js';
import { defaultModelDir, workerEntry } from '../paths.js';
import { WorkerClient, WorkerError } from '../worker/client.js';
import { ELASTIC_VARIANTS, IMPORTANCES, isOneOf, type AskResult, type AskWarning, type CacheOptions, type GenerateOptions, type ImageDetail, type LoadOptions } from '../protocol.js';
import { parseDetail, parseDevice, parseIntOption, parseKeep, parsePolicy } from './options.js';

const USAGE = 'usage: npm run ask -- IMAGE "QUESTION" [options]   (npm run ask -- --help lists them)';

/** --help: every option the README lists. */
export const HELP = `usage: npm run ask -- IMAGE "QUESTION" [options]

Asks a vision-language model about an image and prints the answer.

options:
  --model DIR                 model folder in the SmolVLM ONNX layout (default: the embedded model, models/default)
  --device D                  auto|cpu|webgpu|cuda|dml|coreml (default auto)
  --dtype T                   onnx/ file variant: fp16|q4|int8 (default: fp32)
  --max-new-tokens N          answer length limit, 1 to 8192 (default 128)
  --policy P                  KV cache policy: full|elastic|h2o|streaming|snapkv (default full)
  --keep K                    fraction of the KV cache kept, 0 < K <= 1 (default 0.5; 1 with --policy full)
  --detail L                  image tiling: global|low|medium|full (default full, the model's own)
  --positions M               absolute|compressed position ids after compression (default absolute)
  --variant V                 Elastic's method: answers (the product's, default), paper, released (the released code)
  --importance I              the paper's Elastic ranks by sum (the paper) or mean (per seeing query); selects --variant paper
  --merge on|off              the paper's Elastic merges dropped entries into anchors (on) or evicts them; selects --variant paper
  --temperature T             0 = greedy (default); with --top-p P and --seed S for sampling
  --top-p P                   nucleus sampling, 0 < P <= 1
  --seed S                    sampling seed (default 0)
  --json                      print one JSON object (answer, token counts, provider, timings, cache, warnings) instead
  --in-process                run the model in this process instead of the worker
  --verbose                   log loading and provider choices to stderr
  -h, --help                  this help

warnings: an answer about an image unlike the model's training images carries the warning unfamiliar-image
(in --json's "warnings", and one "warning: ..." line on stderr); the model folder's familiarity.json holds the
statistics (npm run familiarity makes it; folders without one, such as the published SmolVLMs, get no check).
The embedded model flags 45 of 45 photos, document pages and code screenshots (data/unfamiliar) and 0 of 159
held-out images (data/heldout); docs/familiarity.md has the measurement.

exit codes: 0 answered, 2 bad input (image, question, options, model folder), 1 internal failure
`;

/** Drops the whitespace a tokenizer puts before the first word (SentencePiece's leading space). */
export function leadingTrimmer(write: (t: string) => void): (t: string) => void {
  let started = false;
  return (t: string) => {
    if (!started) {
      t = t.replace(/^\s+/, '');
      if (!t) return;
      started = true;
    }
    write(t);
  };
}

/** The stderr line of a warning: one line, with what to do about it. */
export function warningLine(w: AskWarning): string {
  const hint = w.code === 'unfamiliar-image' ? ' A larger model may answer it: --model DIR of a SmolVLM folder (the extension\'s Download Model fetches one).' : '';
  return `warning: ${w.code}: ${w.message}${hint}`;
}

async function main(): Promise<number> {
  let verbose = process.argv.includes('--verbose');
  try {
    const { values, positionals } = parseArgs({
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        device: { type: 'string' },
        dtype: { type: 'string' },
        'max-new-tokens': { type: 'string' },
        policy: { type: 'string' },
        keep: { type: 'string' },
        variant: { type: 'string' },
        detail: { type: 'string' },
        positions: { type: 'string' },
        importance: { type: 'string' },
        merge: { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        'in-process': { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    verbose = !!values.verbose;
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length !== 2) throw new BadInputError(USAGE);
    const [image, question] = positionals;
    const load: LoadOptions = {
      modelDir: resolve(values.model ?? defaultModelDir()),
      device: parseDevice(values.device),
      dtype: values.dtype,
    };
    const { cache, generate } = turnOptions(values);
    // Loaded only for webgpu: the CLI process itself never needs ONNX Runtime.
    const software = load.device === 'webgpu' && !(await import('../model/sessions.js')).hardwareGpuLikely();
    if (software) {
      // Software Vulkan (lavapipe) gives the same answers but decodes several times slower than the CPU provider.
      process.stderr.write('note: --device webgpu runs on a software adapter here (no hardware GPU found, e.g. Mesa lavapipe): ' +
        'the answer is the same but several times slower than --device cpu; the decode speed follows the answer\n');
    }
    const detail = parseDetail(values.detail);
    const onToken = values.json ? undefined : leadingTrimmer((t: string) => process.stdout.write(t));
    const turn = { image: resolve(image), question, cache, generate, detail };
    const result = values['in-process'] ? await inProcess(load, turn, onToken, verbose) : await viaWorker(load, turn, onToken, verbose);
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write('\n');
    for (const w of result.warnings) process.stderr.write(`${warningLine(w)}\n`);
    if (software && result.executionProvider === 'webgpu') {
      process.stderr.write(`note: software WebGPU decoded ${result.timings.decodeTokensPerSecond.toFixed(1)} tokens/s\n`);
    }
    return 0;
  } catch (e) {
    const bad = isBadInput(e) || (e instanceof WorkerError && e.code === 'bad-input') || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
    process.stderr.write(`error: ${oneLine(e)}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return bad ? 2 : 1;
  }
}

type Values = Record<string, string | boolean | undefined>;

/** The cache and generation options of the command line, each checked with a clear message. */
function turnOptions(values: Values): { cache: CacheOptions; generate: GenerateOptions } {
  const str = (k: string) => values[k] as string | undefined;
  const positions = str('positions') ?? 'absolute';
  if (positions !== 'absolute' && positions !== 'compressed') throw new BadInputError('--positions must be absolute or compressed');
  const policy = parsePolicy(str('policy'), 'full');
  const importance = str('importance');
  if (importance !== undefined && !isOneOf(IMPORTANCES, importance)) throw new BadInputError(`--importance must be ${IMPORTANCES.join(' or ')}`);
  const merge = str('merge');
  if (merge !== undefined && merge !== 'on' && merge !== 'off') throw new BadInputError('--merge must be on or off');
  // --importance / --merge are the paper variant's options: either selects it, as in npm run eval.
  const variant = str('variant') ?? (importance !== undefined || merge !== undefined ? 'paper' : undefined);
  if (variant !== undefined && !isOneOf(ELASTIC_VARIANTS, variant)) {
    throw new BadInputError(`unknown --variant ${JSON.stringify(variant)} (expected ${ELASTIC_VARIANTS.join(', ')})`);
  }
  const cache: CacheOptions = {
    policy,
    keep: parseKeep(str('keep'), policy === 'full' ? 1 : 0.5),
    positions,
    variant,
    importance,
    merge: merge === undefined ? undefined : merge === 'on',
  };
  const temperature = str('temperature') === undefined ? 0 : Number(str('temperature'));
  if (!(temperature >= 0)) throw new BadInputError('--temperature must be >= 0');
  const generate: GenerateOptions = {
    maxNewTokens: parseIntOption('max-new-tokens', str('max-new-tokens'), 128, 1, 8192),
    temperature,
    topP: str('top-p') === undefined ? undefined : Number(str('top-p')),
    seed: parseIntOption('seed', str('seed'), 0, 0, 2 ** 31),
  };
  return { cache, generate };
}

interface Turn {
  image: string;
  question: string;
  cache: CacheOptions;
  generate: GenerateOptions;
  detail: ImageDetail;
}

async function viaWorker(load: LoadOptions, turn: Turn, onToken: ((t: string) => void) | undefined, verbose: boolean): Promise<AskResult> {
  const entry = workerEntry();
  const client = new WorkerClient({ workerPath: entry.path, execArgv: entry.execArgv, log: verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });
  try {
    await client.load(load);
    const { result } = client.ask(turn, { onToken });
    return await result;
  } finally {
    await client.dispose();
  }
}

async function inProcess(load: LoadOptions, turn: Turn, onToken: ((t: string) => void) | undefined, verbose: boolean): Promise<AskResult> {
  const { Vlm } = await import('../vlm.js');
  const vlm = await Vlm.load({ ...load, log: verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });
  try {
    const { ids: _ids, forcedLogProbs: _f, ...result } = await vlm.conversation().ask(turn.image, turn.question, turn, { onToken });
    return result;
  } finally {
    await vlm.release();
  }
}

// Imported by the tests for HELP and leadingTrimmer: run only as the entry point.
if (require.main === module) main().then((code) => process.exit(code));
