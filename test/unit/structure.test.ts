// The codebase's shape, checked: one door between the rooms (the extension and its webview reach the runtime only
// through runtime/protocol.ts and runtime/worker/client.ts), no import circles, the contract's lists and
// package.json's settings in agreement, and no procedure too long to hold in mind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { DEVICES, IMAGE_DETAILS, IMPORTANCES, KEEP_MAX, KEEP_MIN, POLICIES } from '../../runtime/protocol.js';
import { DEFAULT_SETTINGS } from '../../extension/settingsCore.js';

const root = join(__dirname, '..', '..');
const SOURCE_DIRS = ['runtime', 'extension', 'webview'];
const MAX_FUNCTION_LINES = 80;
const MAX_FILE_LINES = 500;

const walk = (d: string): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : []));
const files = SOURCE_DIRS.flatMap((d) => walk(join(root, d)));
const rel = (f: string) => relative(root, f).split('\\').join('/');
const parse = (f: string) => ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);

/** Relative imports and re-exports (type-only ones too) of a file, as repository paths. */
function importsOf(f: string): string[] {
  const out: string[] = [];
  parse(f).forEachChild((n) => {
    const spec = (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier) ? n.moduleSpecifier.text : null;
    if (spec?.startsWith('.')) out.push(rel(resolve(dirname(f), spec.replace(/\.js$/, '.ts'))));
  });
  // Dynamic imports (the worker loads the graph rewrite lazily).
  for (const m of readFileSync(f, 'utf8').matchAll(/import\(['"](\.[^'"]+)['"]\)/g)) out.push(rel(resolve(dirname(f), m[1].replace(/\.js$/, '.ts'))));
  return out;
}
const graph = new Map(files.map((f) => [rel(f), importsOf(f)]));

test('extension/ and webview/ reach runtime/ only through protocol.ts and worker/client.ts', () => {
  const doors = new Set(['runtime/protocol.ts', 'runtime/worker/client.ts']);
  const past: string[] = [];
  for (const [from, tos] of graph) {
    if (from.startsWith('runtime/')) continue;
    for (const to of tos) if (to.startsWith('runtime/') && !doors.has(to)) past.push(`${from} -> ${to}`);
  }
  assert.deepEqual(past, []);
});

test('runtime/ never imports the extension, the webview or vscode', () => {
  for (const [from, tos] of graph) {
    if (!from.startsWith('runtime/')) continue;
    assert.ok(!tos.some((t) => !t.startsWith('runtime/')), `${from} imports ${tos.filter((t) => !t.startsWith('runtime/'))}`);
    assert.doesNotMatch(readFileSync(join(root, from), 'utf8'), /from ['"]vscode['"]/, from);
  }
});

test('protocol.ts is a leaf every layer may use: it imports nothing but the model-folder layout', () => {
  assert.deepEqual(graph.get('runtime/protocol.ts'), ['runtime/model/layout.ts']);
  assert.deepEqual(graph.get('runtime/model/layout.ts'), []);
});

test('no import circles', () => {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(circles, []);
});

test(`no function in runtime/ or extension/ over ${MAX_FUNCTION_LINES} lines, no source file over ${MAX_FILE_LINES}`, () => {
  const long: string[] = [];
  for (const f of files) {
    const sf = parse(f);
    const lines = sf.getLineAndCharacterOfPosition(sf.end).line + 1;
    if (lines > MAX_FILE_LINES) long.push(`${rel(f)}: ${lines} lines`);
    if (rel(f).startsWith('webview/')) continue;
    const visit = (n: ts.Node) => {
      if (ts.isFunctionLike(n) && (n as ts.FunctionLikeDeclaration).body) {
        const a = sf.getLineAndCharacterOfPosition(n.getStart()).line;
        const b = sf.getLineAndCharacterOfPosition(n.end).line;
        const name = (n as ts.FunctionLikeDeclaration).name?.getText() ?? '(anonymous)';
        if (b - a + 1 > MAX_FUNCTION_LINES) long.push(`${rel(f)}:${a + 1} ${name}: ${b - a + 1} lines`);
      }
      n.forEachChild(visit);
    };
    visit(sf);
  }
  assert.deepEqual(long, []);
});

test("package.json's settings agree with the protocol's lists and the settings' defaults", () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties;
  assert.deepEqual(props['elasticVlm.cachePolicy'].enum, [...POLICIES]);
  assert.deepEqual(props['elasticVlm.device'].enum, [...DEVICES]);
  assert.deepEqual(props['elasticVlm.elasticImportance'].enum, [...IMPORTANCES]);
  assert.deepEqual(props['elasticVlm.imageDetail'].enum, [...IMAGE_DETAILS]);
  assert.equal(props['elasticVlm.cacheKeep'].minimum, KEEP_MIN);
  assert.equal(props['elasticVlm.cacheKeep'].maximum, KEEP_MAX);
  for (const [key, value] of Object.entries(DEFAULT_SETTINGS)) {
    assert.deepEqual(props[`elasticVlm.${key}`]?.default, value, `elasticVlm.${key}'s default`);
  }
  // Each setting's enum descriptions match its enum one for one.
  for (const [key, p] of Object.entries<{ enum?: unknown[]; enumDescriptions?: unknown[] }>(props)) {
    if (p.enum && p.enumDescriptions) assert.equal(p.enumDescriptions.length, p.enum.length, key);
  }
});
