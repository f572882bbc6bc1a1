// The malloc settings the inference worker runs under (client.ts forks it with them; the benchmark's children get
// them too, so that it measures what the worker does). A user's own environment overrides them.
export const WORKER_MALLOC_ENV: Record<string, string> = {
  // Few malloc arenas: ONNX Runtime's threads otherwise each grow their own, and RSS creeps up over hours.
  MALLOC_ARENA_MAX: '2',
  // Blocks of 1 MiB and more are mapped on their own and go back to the system when freed. glibc's default
  // threshold grows up to 32 MiB as big blocks are freed, so the transient copies onnxruntime makes while it
  // creates a session (a 256M decoder's weights are 3.5 MB tensors) stayed in the heap: a full-detail answer of
  // the 256M look-alike peaked at 2,095 MiB, 1,866 with this (docs/real-size.md, run 7).
  MALLOC_MMAP_THRESHOLD_: '1048576',
};
