import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSettings, DEFAULT_SETTINGS, checkEndpoint, describeProblem, type Settings } from '../../extension/settingsCore.js';

test('unset settings take the defaults', () => {
  const { settings, problems } = validateSettings({});
  assert.deepEqual(settings, DEFAULT_SETTINGS);
  assert.deepEqual(problems, []);
});

test('valid values are used', () => {
  const raw = { cacheKeep: 0.05, cachePolicy: 'h2o', modelPath: '/m', device: 'cpu', maxNewTokens: 4096, hubEndpoint: 'https://mirror.example/',
    elasticVariant: 'paper', elasticImportance: 'mean', elasticMerge: false, imageDetail: 'low', followUps: 'reuse' };
  const { settings, problems } = validateSettings(raw);
  assert.deepEqual(problems, []);
  assert.deepEqual(settings, { ...raw, hubEndpoint: 'https://mirror.example' });
});

test('invalid values are rejected with a message and the previous valid value is used', () => {
  const previous: Settings = { ...DEFAULT_SETTINGS, cacheKeep: 0.3, cachePolicy: 'streaming', device: 'cpu', maxNewTokens: 99 };
  const raw = { cacheKeep: 1.5, cachePolicy: 'magic', modelPath: '', device: 'tpu', maxNewTokens: 2.5, hubEndpoint: 'http://evil.example',
    elasticImportance: 'median', elasticMerge: 'yes', followUps: 'forget' };
  const { settings, problems } = validateSettings(raw, previous);
  assert.equal(settings.followUps, 'reexpand');
  assert.ok(problems.some((p) => p.key === 'followUps' && /must be one of reexpand, reuse/.test(p.reason)));
  assert.equal(settings.elasticImportance, previous.elasticImportance);
  assert.equal(settings.elasticMerge, previous.elasticMerge);
  assert.ok(problems.some((p) => p.key === 'elasticImportance' && /must be one of sum, mean/.test(p.reason)));
  assert.ok(problems.some((p) => p.key === 'elasticMerge' && /must be true or false/.test(p.reason)));
  assert.equal(settings.cacheKeep, 0.3);
  assert.equal(settings.cachePolicy, 'streaming');
  assert.equal(settings.device, 'cpu');
  assert.equal(settings.maxNewTokens, 99);
  assert.equal(settings.hubEndpoint, DEFAULT_SETTINGS.hubEndpoint);
  assert.deepEqual(problems.map((p) => p.key).sort(), ['cacheKeep', 'cachePolicy', 'device', 'elasticImportance', 'elasticMerge', 'followUps', 'hubEndpoint', 'maxNewTokens']);
  const msg = describeProblem(problems.find((p) => p.key === 'cacheKeep')!);
  assert.match(msg, /elasticVlm\.cacheKeep = 1\.5 must be a number from 0\.05 to 1; using 0\.3/);
});

test('range edges and wrong types', () => {
  const cases: [keyof Settings, unknown, boolean][] = [
    ['cacheKeep', 0.05, true], ['cacheKeep', 1, true], ['cacheKeep', 0.049, false], ['cacheKeep', 0, false],
    ['cacheKeep', -1, false], ['cacheKeep', '0.5', false], ['cacheKeep', NaN, false], ['cacheKeep', null, false],
    ['maxNewTokens', 1, true], ['maxNewTokens', 4096, true], ['maxNewTokens', 0, false], ['maxNewTokens', 4097, false],
    ['maxNewTokens', 12.5, false], ['cachePolicy', 'full', true], ['cachePolicy', 'ELASTIC', false], ['cachePolicy', 3, false],
    ['device', 'webgpu', true], ['device', 'coreml', true], ['device', 'gpu', false], ['modelPath', 5, false],
    ['modelPath', 'a\0b', false], ['modelPath', '~/models/x', true],
  ];
  for (const [key, value, ok] of cases) {
    const { problems } = validateSettings({ [key]: value });
    assert.equal(problems.length === 0, ok, `${key}=${String(value)}`);
  }
});

test('hub endpoint: https anywhere, http only on the loopback address', () => {
  assert.equal(checkEndpoint('https://huggingface.co'), null);
  assert.equal(checkEndpoint('https://mirror.example:8443/hub'), null);
  assert.equal(checkEndpoint('http://127.0.0.1:8080'), null);
  assert.equal(checkEndpoint('http://[::1]:8080'), null);
  for (const bad of ['http://example.com', 'http://localhost.evil.com', 'ftp://127.0.0.1', 'file:///etc', 'not a url', '',
    'https://user:pw@host', 'https://host/?q=1', 'http://10.0.0.1']) {
    assert.notEqual(checkEndpoint(bad), null, bad);
  }
});
