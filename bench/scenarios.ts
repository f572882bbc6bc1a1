// The benchmark scenarios, each run in a fresh child process so peak RSS and load time belong to one row.
//   short:    one image, a short question, a short answer (stops at the end token)
//   describe: one image, "Describe this image.", 512 new tokens forced (end token ignored)
//   long:     one image described, then follow-up turns until the full cache holds >= 2,000 tokens; the last
//             turn's steps are the ones measured
import { runAsChild } from './child.js';
import { Vlm, type StepInfo } from '../runtime/vlm.js';
import type { CacheOptions, Device } from '../runtime/protocol.js';

import type { ScenarioName } from './scenarioNames.js';

export interface RowSpec {
  scenario: ScenarioName;
  policy: CacheOptions['policy'];
  keep: number;
  provider: Device;
  modelDir: string;
  image: string;
  shortQuestion: string;
  /** Load the decoder without the importance outputs (to price them). */
  noScores?: boolean;
  dtype?: string;
}

export interface RowResult {
  scenario: ScenarioName;
  policy: string;
  keep: number;
  provider: string;
  cacheTokensFull: number;
  loadMs: number;
  visionMs: number;
  prefillMs: number;
  firstTokenMs: number;
  decodeTokensPerSecond: number;
  decodeStepMsMedian: number;
  decodeStepMsEnd: number;
  kvBytes: number;
  kvBytesFull: number;
  peakRssBytes: number;
  policyOverheadShare: number;
  answer: string;
  steps: { cacheLength: number; tokensSeen: number; stepMs: number; kvBytes: number }[];
}

const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};

export async function runRow(spec: RowSpec): Promise<RowResult> {
  const vlm = await Vlm.load({ modelDir: spec.modelDir, device: spec.provider, dtype: spec.dtype, scores: !spec.noScores });
  const cache: CacheOptions = { policy: spec.policy, keep: spec.keep };
  const conv = vlm.conversation();
  let steps: StepInfo[] = [];
  const all: StepInfo[] = [];
  let kvPeak = 0;
  const cb = {
    onStep: (s: StepInfo) => {
      steps.push(s);
      all.push(s);
    },
    onStats: (st: { bytes: number }) => (kvPeak = Math.max(kvPeak, st.bytes)),
  };
  const perEntry = () => {
    const sh = vlm.kvShape;
    return sh.layers * 2 * sh.kvHeads * sh.headDim * (sh.dtype === 'float16' ? 2 : 4);
  };
  let first;
  let last;
  if (spec.scenario === 'short') {
    first = last = await conv.ask(spec.image, spec.shortQuestion, { cache, generate: { maxNewTokens: 24, statsEvery: 1 } }, cb);
  } else if (spec.scenario === 'describe') {
    first = last = await conv.ask(spec.image, 'Describe this image.', { cache, generate: { maxNewTokens: 512, ignoreEos: true, statsEvery: 1 } }, cb);
  } else {
    first = last = await conv.ask(spec.image, 'Describe this image.', { cache, generate: { maxNewTokens: 160, ignoreEos: true, statsEvery: 8 } }, cb);
    while (last.cache.tokensSeen < 2000) {
      steps = [];
      last = await conv.followUp('Describe this image again, in full.', { generate: { maxNewTokens: 160, ignoreEos: true, statsEvery: 8 } }, cb);
    }
  }
  const stepMs = steps.map((s) => s.stepMs);
  const policyMs = steps.map((s) => s.policyMs);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const result: RowResult = {
    scenario: spec.scenario,
    policy: spec.policy,
    keep: spec.keep,
    provider: vlm.provider,
    cacheTokensFull: last.cache.tokensSeen,
    loadMs: vlm.loadMs,
    visionMs: first.timings.visionMs,
    prefillMs: first.timings.prefillMs,
    firstTokenMs: first.timings.firstTokenMs,
    decodeTokensPerSecond: 1000 / median(stepMs),
    decodeStepMsMedian: median(stepMs),
    decodeStepMsEnd: median(stepMs.slice(-16)),
    kvBytes: Math.max(kvPeak, last.cache.bytes),
    kvBytesFull: last.cache.fullBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    policyOverheadShare: sum(policyMs) / Math.max(1e-9, sum(stepMs)),
    answer: first.answer,
    steps: all.map((s) => ({ cacheLength: s.cacheLength, tokensSeen: s.tokensSeen, stepMs: s.stepMs, kvBytes: s.cacheLength * perEntry() })),
  };
  conv.dispose();
  await vlm.release();
  return result;
}

// Child-process entry: argv[2] is the JSON spec; prints one JSON line.
if (require.main === module) runAsChild(runRow);
