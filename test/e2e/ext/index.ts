// extensionTestsPath for the extension host: runs the mocha suites in this folder and prints "N passed, N failed".
import * as path from 'node:path';
import * as fs from 'node:fs';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  for (const f of fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort()) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    mocha.run((failures) => {
      const total = mocha.suite.total();
      console.log(`ext-host: ${total - failures} passed, ${failures} failed`);
      if (failures) reject(new Error(`${failures} extension-host tests failed`));
      else resolve();
    });
  });
}
