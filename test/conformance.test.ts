// Runs conformance/recorded (scenarios recorded from Cloudflare's workerd) against every Dione
// binding through the official runner, and requires every scenario to match, except the recorded
// emulation artifacts and the fields listed (with reasons) in test/conformance/deviations.json.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { conformanceDir, root } from './helpers/paths.ts';

const run = promisify(execFile);

interface Report {
  [scenario: string]: { status: 'pass' | 'diff' | 'skip'; diffs?: { path: string; expected: unknown; actual: unknown }[] };
}

const deviations: Record<string, { reason: string; fields: string[] }> = JSON.parse(
  readFileSync(path.join(root, 'test/conformance/deviations.json'), 'utf8'),
).scenarios;

/** The field a differing path ends in: `$.meta.rows_read` -> rows_read, `$[2].rows_read` -> rows_read. */
const field = (p: string) => p.replace(/\[\d+\]$/, '').split('.').at(-1)!;

async function conformance(adapter: string): Promise<Report> {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'dione-conformance-')), 'report.json');
  await run(process.execPath, ['--import', 'tsx', path.join(conformanceDir, 'compare.mjs'), adapter, '--quiet', '--json', out], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e) => {
    // Exit code 1 only means some scenario differed; the report says which.
    if (e.code !== 1) throw e;
  });
  return JSON.parse(readFileSync(out, 'utf8'));
}

for (const binding of ['embedded', 'embedded-file', 'embedded-history', 'http', 'http-local-reads']) {
  test(`conformance: ${binding} binding`, async (t) => {
    const artifacts: Record<string, string> = JSON.parse(readFileSync(path.join(conformanceDir, 'artifacts.json'), 'utf8')).scenarios;
    const report = await conformance(path.join(root, `test/conformance/${binding}-adapter.mjs`));
    assert.ok(Object.keys(report).length > 250, 'the runner reported too few scenarios');
    for (const [name, result] of Object.entries(report)) {
      if (artifacts[name]) continue;
      await t.test(name, () => {
        const deviation = deviations[name];
        if (deviation) {
          const unexpected = (result.diffs ?? []).filter((d) => !deviation.fields.includes(field(d.path)));
          assert.deepEqual(unexpected, [], `${name} differs beyond its known deviation (${deviation.fields.join(', ')})`);
        } else {
          assert.equal(result.status, 'pass', `${name} differs from D1: ${JSON.stringify(result.diffs, null, 1)}`);
        }
      });
    }
  });
}
