// Runs a benchmark piece as a child process: argv[2] is its JSON spec; one JSON line on stdout, exit code 0/1.
export function runAsChild<S, R>(fn: (spec: S) => Promise<R>): void {
  fn(JSON.parse(process.argv[2]) as S).then(
    // exit once the line is written: a large result must not be cut at the pipe's buffer
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0)),
    (e) => {
      process.stderr.write(`error: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
