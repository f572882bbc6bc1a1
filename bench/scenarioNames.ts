// The benchmark's scenario names, apart from bench/scenarios.ts: that module is a child process's entry, and bench.ts
// bundled with it (the GPU machine's carry) would run it as its own entry.
export type ScenarioName = 'short' | 'describe' | 'long';
export const SCENARIOS: ScenarioName[] = ['short', 'describe', 'long'];
