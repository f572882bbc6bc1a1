// npm run ask -- IMAGE "QUESTION" [--model DIR] [--device D] [--max-new-tokens N] [--policy P] [--keep K]
//   [--positions absolute|compressed] [--importance sum|mean] [--merge on|off] [--dtype fp16] [--json] [--in-process] [--verbose]
// Streams the answer to stdout; with --json prints one JSON object at the end instead.
// Exit codes: 0 ok, 2 bad input (image, question, options, model folder), 1 internal failure.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { BadInputError, isBadInput, oneLine } from '../errors.js';
import { defaultModelDir, workerEntry } from '../paths.js';
import { WorkerClient, WorkerError } from '../worker/client.js';
import type { AskResult, CacheOptions, GenerateOptions, LoadOptions } from '../protocol.js';
import { ELASTIC_VARIANTS } from '../protocol.js';
import { parseDevice, parseIntOption, parseKeep, parsePolicy } from './options.js';

const USAGE = 'usage: npm run ask -- IMAGE "QUESTION" [--model DIR] [--device auto|cpu|webgpu|cuda|dml|coreml] [--max-new-tokens N] [--policy full|elastic|h2o|streaming|snapkv] [--keep K] [--variant answers|paper|released] [--json]';

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
        positions: { type: 'string' },
        importance: { type: 'string' },
        merge: { type: 'string' },
        variant: { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        'in-process': { type: 'boolean' },
        verbose: { type: 'boolean' },
      },
    });
    verbose = !!values.verbose;
    if (positionals.length !== 2) throw new BadInputError(USAGE);
    const [image, question] = positionals;
    const positions = values.positions ?? 'absolute';
    if (positions !== 'absolute' && positions !== 'compressed') throw new BadInputError('--positions must be absolute or compressed');
    const load: LoadOptions = {
      modelDir: resolve(values.model ?? defaultModelDir()),
      device: parseDevice(values.device),
      dtype: values.dtype,
    };
    const policy = parsePolicy(values.policy, 'full');
    if (values.importance !== undefined && values.importance !== 'sum' && values.importance !== 'mean') throw new BadInputError('--importance must be sum or mean');
    if (values.merge !== undefined && values.merge !== 'on' && values.merge !== 'off') throw new BadInputError('--merge must be on or off');
    const cache: CacheOptions = {
      policy,
      keep: parseKeep(values.keep, policy === 'full' ? 1 : 0.5),
      positions,
      importance: values.importance as CacheOptions['importance'],
      merge: values.merge === undefined ? undefined : values.merge === 'on',
      // --importance / --merge are the paper variant's options: either selects it, as in npm run eval
      variant: (values.variant ?? (values.importance !== undefined || values.merge !== undefined ? 'paper' : undefined)) as CacheOptions['variant'],
    };
    if (cache.variant !== undefined && !ELASTIC_VARIANTS.includes(cache.variant)) {
      throw new BadInputError(`unknown --variant ${JSON.stringify(values.variant)} (expected ${ELASTIC_VARIANTS.join(', ')})`);
    }
    const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
    if (!(temperature >= 0)) throw new BadInputError('--temperature must be >= 0');
    const generate: GenerateOptions = {
      maxNewTokens: parseIntOption('max-new-tokens', values['max-new-tokens'], 128, 1, 8192),
      temperature,
      topP: values['top-p'] === undefined ? undefined : Number(values['top-p']),
      seed: parseIntOption('seed', values.seed, 0, 0, 2 ** 31),
    };
    const onToken = values.json ? undefined : (t: string) => process.stdout.write(t);
    const result = values['in-process']
      ? await inProcess(load, resolve(image), question, cache, generate, onToken, verbose)
      : await viaWorker(load, resolve(image), question, cache, generate, onToken, verbose);
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write('\n');
    return 0;
  } catch (e) {
    const bad = isBadInput(e) || (e instanceof WorkerError && e.code === 'bad-input') || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
    process.stderr.write(`error: ${oneLine(e)}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return bad ? 2 : 1;
  }
}

async function viaWorker(load: LoadOptions, image: string, question: string, cache: CacheOptions, generate: GenerateOptions,
  onToken: ((t: string) => void) | undefined, verbose: boolean): Promise<AskResult> {
  const entry = workerEntry();
  const client = new WorkerClient({ workerPath: entry.path, execArgv: entry.execArgv, log: verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });
  try {
    await client.load(load);
    const { result } = client.ask({ image, question, cache, generate }, { onToken });
    return await result;
  } finally {
    await client.dispose();
  }
}

async function inProcess(load: LoadOptions, image: string, question: string, cache: CacheOptions, generate: GenerateOptions,
  onToken: ((t: string) => void) | undefined, verbose: boolean): Promise<AskResult> {
  const { Vlm } = await import('../vlm.js');
  const vlm = await Vlm.load({ ...load, log: verbose ? (l) => process.stderr.write(`${l}\n`) : undefined });
  try {
    const { ids: _ids, forcedLogProbs: _f, ...result } = await vlm.conversation().ask(image, question, { cache, generate }, { onToken });
    return result;
  } finally {
    await vlm.release();
  }
}

main().then((code) => process.exit(code));
