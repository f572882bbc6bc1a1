// npm run bench -- [--scenario short|describe|long] [--provider cpu[,webgpu]] [--json] [--docs DIR] [--model DIR] [--dtype D]
//                  [--rows FILE]  (each row and peer appended to FILE as a JSON line as soon as it is measured)
// What Elastic Cache buys in speed and memory on the default model, beside the full cache and transformers.js.
// Each row runs in a fresh child process (bench/scenarios.ts); the peer too (bench/peer.ts).
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, statSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultModelDir, packageRoot } from '../runtime/paths.js';
import { machineInfo } from '../runtime/eval/machine.js';
import { linePlotSvg } from '../runtime/eval/plot.js';
import { listOption, parseDevice } from '../runtime/cli/options.js';
import { readModelFolder } from '../runtime/model/modelFolder.js';
import { SCENARIOS, type ScenarioName } from './scenarioNames.js';
import { WORKER_MALLOC_ENV } from '../runtime/worker/env.js';
import type { RowResult, RowSpec } from './scenarios.js';
import type { PeerResult, PeerSpec } from './peer.js';
import type { PrefillCost } from './prefill.js';

const CELLS: { policy: RowSpec['policy']; keep: number }[] = [
  { policy: 'full', keep: 1 },
  ...(['elastic', 'h2o', 'streaming'] as const).flatMap((policy) => [0.5, 0.2].map((keep) => ({ policy, keep }))),
];

function child<T>(script: string, spec: object): T {
  // Bundled (the GPU machine's carry, scripts/device/build-carry.sh) the pieces sit beside this file as .js.
  const args = __filename.endsWith('.js') ? [join(__dirname, script.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', join(packageRoot(), 'bench', script)];
  const out = execFileSync(process.execPath, [...args, JSON.stringify(spec)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'inherit'],
    // Every row under the worker's malloc settings; BENCH_MALLOC=default measures glibc's own.
    env: process.env.BENCH_MALLOC === 'default' ? process.env : { ...WORKER_MALLOC_ENV, ...process.env },
  });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/** Copy bandwidth of this machine (bytes read + bytes written per second), median of several 256 MiB copies. */
export function memoryBandwidthGBs(): number {
  const n = 32 << 20; // 32 Mi doubles = 256 MiB
  const a = new Float64Array(n).fill(1);
  const b = new Float64Array(n);
  const rates: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    b.set(a);
    const s = (performance.now() - t0) / 1000;
    rates.push((2 * a.byteLength) / s / 1e9);
  }
  return rates.sort((x, y) => x - y)[3];
}

function pickImage(): { image: string; question: string } {
  const dir = join(packageRoot(), 'media', 'samples');
  try {
    const qs = JSON.parse(readFileSync(join(dir, 'questions.json'), 'utf8')) as { image: string; question: string }[];
    return { image: join(dir, qs[0].image), question: qs[0].question };
  } catch {
    const png = readdirSync(dir).find((f) => f.endsWith('.png'))!;
    return { image: join(dir, png), question: 'What is the title of the window?' };
  }
}

function table(rows: (RowResult & { floorRatio: number; rssRatio: number })[]): string {
  const head = ['scenario', 'policy', 'keep', 'provider', 'cache tokens (full)', 'load ms', 'vision ms', 'prefill ms', 'first token ms',
    'decode tok/s', 'step ms (end)', 'KV bytes', 'KV / full', 'peak RSS MB', 'RSS / weight files', 'policy share', 'x floor'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    lines.push(`| ${[r.scenario, r.policy, r.keep, r.provider, r.cacheTokensFull, r.loadMs.toFixed(0), r.visionMs.toFixed(1), r.prefillMs.toFixed(1),
      r.firstTokenMs.toFixed(1), r.decodeTokensPerSecond.toFixed(1), r.decodeStepMsEnd.toFixed(2), r.kvBytes, (r.kvBytes / r.kvBytesFull).toFixed(3),
      (r.peakRssBytes / 2 ** 20).toFixed(0), r.rssRatio.toFixed(2), (100 * r.policyOverheadShare).toFixed(1) + '%', r.floorRatio.toFixed(1)].join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      provider: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      docs: { type: 'string' },
      model: { type: 'string' },
      dtype: { type: 'string' },
      policy: { type: 'string', multiple: true },
      'no-peer': { type: 'boolean' },
      'no-prefill': { type: 'boolean' },
      rows: { type: 'string' },
    },
  });
  const scenarios = (listOption(values.scenario) ?? SCENARIOS) as ScenarioName[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
  const providers = (listOption(values.provider) ?? ['cpu']).map((p) => parseDevice(p));
  const only = listOption(values.policy);
  for (const p of only ?? []) if (!CELLS.some((c) => c.policy === p)) throw new Error(`unknown policy ${p} (the bench runs ${[...new Set(CELLS.map((c) => c.policy))].join(', ')})`);
  const cells = CELLS.filter((c) => !only || only.includes(c.policy));
  const modelDir = resolve(values.model ?? defaultModelDir());
  const { image, question } = pickImage();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  // A run cut short (a time limit on the GPU machine) keeps the rows it finished.
  const record = (kind: string, x: object) => values.rows && appendFileSync(values.rows, `${JSON.stringify({ kind, model: modelDir, dtype: dtype ?? 'fp32', ...x })}\n`);
  const bandwidth = memoryBandwidthGBs();
  const dtype = values.dtype;
  const files = readModelFolder(modelDir, dtype ?? '').files;
  const weightBytes = statSync(files.decoder).size; // every step reads all decoder weights
  const weightFileBytes = [files.decoder, files.vision, files.embed].reduce((a, f) => a + statSync(f).size, 0);
  log(`memory bandwidth ${bandwidth.toFixed(1)} GB/s; decoder weights ${(weightBytes / 2 ** 20).toFixed(1)} MiB; weight files ${(weightFileBytes / 2 ** 20).toFixed(1)} MiB`);

  const rows: (RowResult & { floorMs: number; floorRatio: number; rssRatio: number })[] = [];
  const failed: { scenario: ScenarioName; policy: string; keep: number; provider: string; error: string }[] = [];
  const peer: (PeerResult & { scenario: ScenarioName; answersAgree: boolean; oursFullTokensPerSecond: number; ratio: number })[] = [];
  for (const scenario of scenarios) {
    for (const provider of providers) {
      for (const cell of cells) {
        let r: RowResult;
        try {
          r = child<RowResult>('scenarios.ts', { scenario, ...cell, provider, modelDir, image, shortQuestion: question, dtype } satisfies RowSpec);
        } catch (e) {
          // A cell the provider refuses (WebGPU's fused attention has no scores for elastic and h2o) is reported, not fatal.
          const error = (e as Error).message.split('\n').find((l) => l.startsWith('error:')) ?? (e as Error).message.split('\n')[0];
          failed.push({ scenario, ...cell, provider, error });
          record('failed', failed[failed.length - 1]);
          log(`${scenario} ${cell.policy} ${cell.keep} ${provider}: failed (${error})`);
          continue;
        }
        const floorMs = ((weightBytes + r.kvBytes) / (bandwidth * 1e9)) * 1000;
        rows.push({ ...r, floorMs, floorRatio: r.decodeStepMsEnd / floorMs, rssRatio: r.peakRssBytes / weightFileBytes });
        record('row', withoutSteps(rows[rows.length - 1]));
        log(`${scenario} ${cell.policy} ${cell.keep} ${r.provider}: ${r.decodeTokensPerSecond.toFixed(1)} tok/s, end step ${r.decodeStepMsEnd.toFixed(2)} ms, KV ${(r.kvBytes / r.kvBytesFull).toFixed(3)} of full, policy ${(100 * r.policyOverheadShare).toFixed(1)}%`);
      }
    }
    if (!values['no-peer']) {
      const full = rows.find((r) => r.scenario === scenario && r.policy === 'full' && r.provider === 'cpu');
      const base = { modelDir, image, dtype: dtype ?? 'fp32' };
      const spec: PeerSpec = scenario === 'short'
        ? { ...base, question, maxNewTokens: 24, ignoreEos: false }
        : scenario === 'describe'
          ? { ...base, question: 'Describe this image.', maxNewTokens: 512, ignoreEos: true }
          : { ...base, question: 'Describe this image again, in full.', maxNewTokens: 160, ignoreEos: true, history: longHistory(full) };
      try {
        const p = child<PeerResult>('peer.ts', spec);
        const ours = full?.decodeTokensPerSecond ?? NaN;
        const agree = full ? scenario === 'long' || normalize(p.answer) === normalize(full.answer) : false;
        peer.push({ ...p, scenario, answersAgree: agree, oursFullTokensPerSecond: ours, ratio: ours / p.decodeTokensPerSecond });
        record('peer', peer[peer.length - 1]);
        log(`peer ${scenario}: transformers.js ${p.decodeTokensPerSecond.toFixed(1)} tok/s vs ours (full) ${ours.toFixed(1)}; answers agree: ${agree}`);
      } catch (e) {
        log(`peer ${scenario} failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  // What the importance outputs and the prefill compaction cost (target: at most 10% of the prefill).
  const prefillOverhead = values['no-prefill'] ? null : child<PrefillCost>('prefill.ts', { modelDir, image, dtype });
  if (prefillOverhead) log(`prefill: stock decoder ${prefillOverhead.plainPrefillMs.toFixed(1)} ms, with importance outputs + elastic compaction ${prefillOverhead.scoredPrefillMs.toFixed(1)} ms (+${(100 * prefillOverhead.share).toFixed(1)}%)`);
  const machine = machineInfo();
  const floor = { memoryBandwidthGBs: bandwidth, decoderWeightBytes: weightBytes, weightFileBytes, dtype: dtype ?? 'fp32', note: 'floor = (decoder weights + kept KV bytes) / copy bandwidth, per decode step' };
  const malloc = process.env.BENCH_MALLOC === 'default' ? 'glibc default' : WORKER_MALLOC_ENV;
  const slim = rows.map(withoutSteps);
  if (values.docs) writeDocs(resolve(values.docs), machine, rows, peer, floor, prefillOverhead);
  if (values.json) process.stdout.write(`${JSON.stringify({ machine, malloc, rows: slim, failed, peer, floor, prefillOverhead })}\n`);
  else process.stdout.write(`${table(rows)}\n`);
  return 0;
}

/** A row as the JSON outputs give it: without its per-step trace and answer text. */
const withoutSteps = <R extends { steps: unknown; answer: unknown }>({ steps: _s, answer: _a, ...r }: R) => r;

const normalize = (s: string) => s.toLowerCase().replace(/\s+/g, ' ').trim();

/** The long scenario's earlier turns, for the peer's single long prompt (same answers as our full run). */
function longHistory(full: RowResult | undefined): { question: string; answer: string }[] {
  const a = full?.answer ?? '';
  const turns = [{ question: 'Describe this image.', answer: a }];
  const target = full?.cacheTokensFull ?? 2000;
  // Each turn adds about as many tokens as ours did; repeat until the peer's prompt is as long.
  const perTurn = Math.max(1, Math.round(target / 11));
  for (let n = 1; n * perTurn < target - 400; n++) turns.push({ question: 'Describe this image again, in full.', answer: a });
  return turns;
}

function writeDocs(dir: string, machine: ReturnType<typeof machineInfo>, rows: (RowResult & { floorRatio: number; rssRatio: number })[], peer: object[], floor: object, prefillOverhead: PrefillCost | null) {
  mkdirSync(dir, { recursive: true });
  const stamp = `Measured on ${machine.cpu} (${machine.cores} cores, ${machine.memoryGB} GiB, ${machine.platform}, Node ${machine.node}), ${machine.date}, commit ${machine.commit}.`;
  writeFileSync(join(dir, 'bench.json'), `${JSON.stringify({ machine, rows: rows.map(({ steps: _s, ...r }) => r), peer, floor, prefillOverhead }, null, 1)}\n`);
  writeFileSync(join(dir, 'bench-table.md'), `${stamp}\n\n${table(rows)}\n\nPeer:\n\n\`\`\`json\n${JSON.stringify(peer, null, 1)}\n\`\`\`\n`);
  const long = rows.filter((r) => r.scenario === (rows.some((x) => x.scenario === 'long') ? 'long' : 'describe'));
  writeFileSync(join(dir, 'bench-step-time.svg'), linePlotSvg({
    title: 'Decode step time vs tokens seen',
    xLabel: 'tokens seen',
    yLabel: 'step ms',
    series: long.map((r) => ({ name: `${r.policy} ${r.keep}`, points: r.steps.map((s) => [s.tokensSeen, s.stepMs] as [number, number]) })),
  }));
  const desc = rows.filter((r) => r.scenario === 'describe');
  writeFileSync(join(dir, 'bench-memory.svg'), linePlotSvg({
    title: 'KV cache bytes vs tokens seen (describe)',
    xLabel: 'tokens seen',
    yLabel: 'KV bytes',
    series: desc.map((r) => ({ name: `${r.policy} ${r.keep}`, points: r.steps.map((s) => [s.tokensSeen, s.kvBytes] as [number, number]) })),
  }));
}

if (require.main === module) {
  main().then((c) => process.exit(c), (e) => {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
