// `dione serve` as a process: a second server on a port that is taken says so in one line and
// exits 1 (no EADDRINUSE stack trace), and the first one keeps serving.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { dione } from './helpers/cli-d1.ts';
import { startTestServer } from './helpers/server.ts';

test('a second `dione serve` on a busy port prints one clear line and exits 1', async (t) => {
  const first = await startTestServer();
  t.after(() => first.close());
  const data = mkdtempSync(path.join(tmpdir(), 'dione-serve-busy-'));
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const port = new URL(first.url).port;
  const second = await dione(data, ['serve', '--host', '127.0.0.1', '--port', port, '--data', data]);
  assert.equal(second.code, 1, second.stderr);
  assert.equal(second.stderr, `dione: port ${port} on 127.0.0.1 is in use (another \`dione serve\`?): stop that process, or give this one another port with --port N\n`);
  assert.equal(second.stdout, '');
  assert.equal((await first.call(first.api)).status, 200, 'the first server still answers');
});
