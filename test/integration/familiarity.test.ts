// The unfamiliar-image warning through the real embedded model and its committed familiarity.json: a photo of
// data/unfamiliar gets it (in --json and as one stderr line), a data/heldout image does not, a model folder without
// the file gets no check; and the command that makes the file is rerunnable and refuses bad input in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, root } from '../helpers/cli.js';
import { WorkerClient } from '../../runtime/worker/client.js';
import { checkFamiliarityFile } from '../../runtime/model/familiarity.js';

const model = join(root, 'models', 'default');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const photo = join(root, 'data', 'unfamiliar', 'photo_ladybird.jpg');
const code = join(root, 'data', 'unfamiliar', 'code_01_dark.png');
const heldout = join(root, 'data', 'heldout', '0002_ui.png');

function familiarity(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'runtime', 'cli', 'familiarity.ts'), ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the embedded model ships a familiarity.json made for its own vision encoder', () => {
  const f = JSON.parse(readFileSync(join(model, 'familiarity.json'), 'utf8'));
  assert.equal(checkFamiliarityFile(f, 256, 64), null);
  assert.ok(f.calibration.images >= 400, `${f.calibration.images} calibration images`);
});

test('a photo gets the unfamiliar-image warning: in --json, and one line on stderr', () => {
  const r = ask([photo, 'How many bars are there?', '--model', model, '--device', 'cpu', '--max-new-tokens', '4', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.warnings.length, 1, JSON.stringify(j.warnings));
  assert.equal(j.warnings[0].code, 'unfamiliar-image');
  assert.ok(j.warnings[0].score > j.warnings[0].threshold, JSON.stringify(j.warnings[0]));
  const lines = r.err.trim().split('\n').filter((l) => l.startsWith('warning: '));
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0], /^warning: unfamiliar-image: This image looks unlike the images this model was trained on .*--model DIR/);
  // the answer still comes (the warning says what to make of it)
  assert.equal(typeof j.answer, 'string');
});

test('a held-out diagram gets no warning, in --json or on stderr', () => {
  const r = ask([heldout, 'What is the window title?', '--model', model, '--device', 'cpu', '--max-new-tokens', '8', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.warnings, []);
  assert.doesNotMatch(r.err, /warning:/);
  const plain = ask([heldout, 'What is the window title?', '--model', model, '--device', 'cpu', '--max-new-tokens', '8']);
  assert.equal(plain.out.trim(), j.answer);
  assert.doesNotMatch(plain.err, /warning:/);
});

test('through the worker: ready says the check is on; every turn about the image carries the warning; no file, no check', async () => {
  const client = new WorkerClient({ workerPath: join(root, 'runtime', 'worker', 'main.ts'), execArgv: ['--import', 'tsx'] });
  try {
    const info = await client.load({ modelDir: model, device: 'cpu' });
    assert.equal(info.familiarity, true);
    const generate = { maxNewTokens: 3 };
    const first = await client.ask({ image: code, question: 'What is the title?', cache: { policy: 'full', keep: 1 }, generate }).result;
    assert.deepEqual(first.warnings.map((w) => w.code), ['unfamiliar-image']);
    const follow = await client.followUp({ question: 'And the button?', generate }).result;
    assert.deepEqual(follow.warnings.map((w) => w.code), ['unfamiliar-image'], 'a follow-up is about the same image');
    const diagram = await client.ask({ image: heldout, question: 'What is the window title?', cache: { policy: 'full', keep: 1 }, generate }).result;
    assert.deepEqual(diagram.warnings, []);
    const noFile = await client.load({ modelDir: tiny, device: 'cpu' });
    assert.equal(noFile.familiarity, false, 'the tiny model has no familiarity.json');
    const r = await client.ask({ image: photo, question: 'What is it?', cache: { policy: 'full', keep: 1 }, generate }).result;
    assert.deepEqual(r.warnings, []);
  } finally {
    await client.dispose();
  }
});

const pillow = spawnSync('/usr/bin/python3', ['-c', 'import PIL'], { encoding: 'utf8' }).status === 0;

test('calibration_images.py + npm run familiarity: a valid file, the same again on a rerun, rates with --report', { skip: pillow ? false : 'no /usr/bin/python3 with Pillow' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'evlm-familiarity-'));
  try {
    const calib = join(dir, 'calib');
    const py = spawnSync('/usr/bin/python3', [join(root, 'train', 'calibration_images.py'), calib, '12', '--styled'], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    assert.ok(existsSync(join(calib, 'calib_00011.png')));
    const out = join(dir, 'familiarity.json');
    const args = ['--model', model, '--images', calib, '--components', '4', '--out', out, '--report', join(root, 'data', 'unfamiliar'), '--json'];
    const a = familiarity(args);
    assert.equal(a.code, 0, a.err);
    const f = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(checkFamiliarityFile(f, 256, 64), null);
    assert.equal(f.calibration.images, 12);
    assert.equal(f.calibration.thresholdImages, 3);
    assert.equal(f.calibration.folders[0].made.generator, 'train/calibration_images.py');
    const summary = JSON.parse(a.out);
    assert.equal(summary.report[0].set, 'unfamiliar');
    assert.equal(summary.report[0].images, 45);
    const b = familiarity(args);
    assert.equal(b.code, 0, b.err);
    const g = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual({ ...g, calibration: { ...g.calibration, made: null } }, { ...f, calibration: { ...f.calibration, made: null } }, 'a rerun makes the same statistics');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run familiarity: bad input is one line and exit 2, and the model folder is left alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evlm-familiarity-'));
  try {
    const before = readFileSync(join(model, 'familiarity.json'));
    writeFileSync(join(dir, 'broken.png'), 'not a png');
    for (let i = 0; i < 8; i++) writeFileSync(join(dir, `ok${i}.png`), readFileSync(heldout));
    const cases: [string[], RegExp][] = [
      [['--model', model], /--images DIR is required/],
      [['--model', model, '--images', join(dir, 'nowhere')], /not a folder/],
      [['--model', model, '--images', join(root, 'docs')], /no png, jpg/],
      [['--model', model, '--images', dir, '--out', join(dir, 'f.json')], /broken\.png/],
      [['--model', model, '--images', dir, '--quantile', '2'], /--quantile/],
      [['--model', model, '--images', dir, 'extra'], /unexpected argument/],
    ];
    for (const [args, re] of cases) {
      const r = familiarity(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      const lines = r.err.trim().split('\n');
      assert.equal(lines.length, 1, r.err);
      assert.match(lines[0], re);
    }
    assert.deepEqual(readFileSync(join(model, 'familiarity.json')), before);
    assert.ok(!existsSync(join(dir, 'f.json')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
