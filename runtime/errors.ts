// Errors the user can act on carry `kind: 'bad-input'`; everything else is an internal failure.
// The CLI maps them to exit codes 2 and 1, the worker to the protocol's error codes.

export class BadInputError extends Error {
  readonly kind = 'bad-input' as const;
  constructor(message: string) {
    super(message);
    this.name = 'BadInputError';
  }
}

export function isBadInput(e: unknown): e is BadInputError {
  return e instanceof BadInputError || (typeof e === 'object' && e !== null && (e as { kind?: string }).kind === 'bad-input');
}

/** One line, no stack: what the user sees. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0].trim() || 'unknown error';
}

/** ONNX Runtime's and the C++ runtime's words for an allocation that failed. */
const OUT_OF_MEMORY = /bad_alloc|Failed to allocate|out of memory|Cannot allocate memory|OrtMemoryAllocation/i;

/** What the user sees of an internal failure: one line, and for an allocation failure what to try instead. */
export function describeFailure(e: unknown): string {
  const line = oneLine(e);
  return OUT_OF_MEMORY.test(line)
    ? `out of memory while answering (${line.slice(0, 160)}): try elasticVlm.imageDetail low, a q4 model or a smaller model`
    : line;
}
