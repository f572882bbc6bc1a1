// Runs the mocha suites of test/e2e/ext (compiled) inside the real Node extension host of VS Code's server: the
// workbench is opened with a `payload` naming extensionDevelopmentPath (the INSTALLED extension folder) and
// extensionTestsPath; the server must run with --enable-smoke-test-driver. The page reports through
// codeAutomationLog / codeAutomationExit, exposed here.
// usage: node run-ext-tests.js PORT EXTENSION_DIR TESTS_DIR WORKSPACE   (exit code 0 = all passed)
'use strict';
const util = require('util');
const { chromium } = require('playwright-core');
const [port, extDir, testsDir, workspace] = process.argv.slice(2);
const host = `127.0.0.1:${port}`;
const remote = (p) => `vscode-remote://${host}${p}`;
const payload = [['extensionDevelopmentPath', remote(extDir)], ['extensionTestsPath', remote(testsDir)], ['skipWelcome', 'true']];
const url = `http://${host}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
const QUIET = /AgentHost|ChatModelSelection|AccountPolicyGate|No signed-in session|\[Extension Host\] (Mocha|Node)/;
const LAUNCH = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

(async () => {
  const started = Date.now();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: LAUNCH });
  const page = await (await browser.newContext()).newPage();
  let finish;
  const finished = new Promise((r) => (finish = r));
  let summary = null;
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const line = util.format(...(args || []));
    if (QUIET.test(line)) return;
    if (/\d+ passed, \d+ failed/.test(line)) summary = line.trim();
    console.log(line);
  });
  await page.exposeFunction('codeAutomationExit', (code) => finish(code));
  await page.goto(url);
  const limit = Number(process.env.EXT_TEST_TIMEOUT_MS || 300000);
  const code = await Promise.race([finished, new Promise((r) => setTimeout(() => r('timeout'), limit))]);
  console.log(`extension-host tests exited with ${code} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  await browser.close();
  if (!summary) console.log(code === 0 ? 'ext-host: 0 passed, 0 failed' : 'ext-host: 0 passed, 1 failed');
  process.exit(code === 0 ? 0 : 1);
})().catch((e) => {
  console.error(e);
  console.log('ext-host: 0 passed, 1 failed');
  process.exit(1);
});
