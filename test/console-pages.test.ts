// The console's files as the server serves them (no browser needed): the page, its script and
// stylesheet with a strict content security policy, --no-console, a copy without a built console;
// and the console's SQL splitting and error positions.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { errorPosition, splitStatements } from '../console/src/sql-text.ts';
import { consolePages } from '../src/server/routes/console-pages.ts';
import { buildConsole } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

describe('console files', () => {
  let server: TestServer;
  before(async () => {
    buildConsole();
    server = await startTestServer();
  });
  after(() => server?.close());

  test('/ is the console page; its script and stylesheet are served with a strict policy, no token needed', async () => {
    const page = await fetch(server.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    const policy = page.headers.get('content-security-policy')!;
    assert.match(policy, /script-src 'self'/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/console\/app\.js">/);
    const script = await fetch(`${server.url}/console/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type')!, /^text\/javascript/);
    assert.ok((await script.text()).length > 10_000, 'the bundle holds the app and its libraries');
    const css = await fetch(`${server.url}/console/app.css`);
    assert.equal(css.status, 200);
    assert.match(await css.text(), /\.grid/);
    // Nothing outside the console's own folder is reachable through it.
    for (const probe of ['/console/..%2fpackage.json', '/console/%2e%2e/index.html', '/console/nothing.js']) {
      const response = await fetch(`${server.url}${probe}`);
      assert.ok(response.status === 404 || response.status === 400, `${probe}: ${response.status}`);
    }
    // The API behind it still wants a token.
    assert.equal((await fetch(`${server.url}/dione/v1/whoami`)).status, 401);
  });

  test('--no-console: / is not served, the API is', async () => {
    const quiet = await startTestServer({ console: false });
    try {
      assert.equal((await fetch(quiet.url)).status, 404);
      assert.equal((await fetch(`${quiet.url}/console/app.js`)).status, 404);
      assert.equal((await quiet.call('/dione/v1/whoami')).status, 200);
    } finally {
      await quiet.close();
    }
  });

  test('a copy of Dione whose console was never built says how to build it', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'dione-no-console-'));
    try {
      const answer = await consolePages(path.join(empty, 'missing')).request('/');
      assert.equal(answer.status, 503);
      assert.match(await answer.text(), /npm run build/);
      writeFileSync(path.join(empty, 'index.html'), '<p>hi</p>');
      writeFileSync(path.join(empty, 'secret.key'), 'not served');
      const built = consolePages(empty);
      assert.equal(await (await built.request('/')).text(), '<p>hi</p>');
      assert.equal((await built.request('/console/secret.key')).status, 404);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('console SQL text', () => {
  test('statements split as the server splits them: quotes, comments, brackets and trigger bodies respected', () => {
    const sql = "SELECT 'a;b';\n-- c;\nCREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET z = CASE WHEN 1 THEN 2 END; DELETE FROM w; END;\nSELECT \"q;\" FROM [a;b] /* ; */;;  ";
    assert.deepEqual(
      splitStatements(sql).map((s) => s.text.trim()),
      ["SELECT 'a;b';", '-- c;\nCREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET z = CASE WHEN 1 THEN 2 END; DELETE FROM w; END;', 'SELECT "q;" FROM [a;b] /* ; */;'],
    );
    const when = 'CREATE TRIGGER t2 AFTER UPDATE ON x WHEN old.begin = 1 BEGIN SELECT 1; END; SELECT 3';
    assert.deepEqual(
      splitStatements(when).map((s) => s.text.trim()),
      ['CREATE TRIGGER t2 AFTER UPDATE ON x WHEN old.begin = 1 BEGIN SELECT 1; END;', 'SELECT 3'],
    );
    for (const s of splitStatements(sql)) assert.equal(sql.slice(s.start, s.start + s.text.length), s.text);
  });

  test('an error offset (UTF-8 bytes) points into the statement that failed, after its leading space and comments', () => {
    const sql = 'SELECT 1;\n  /* note */ SELECT name FRM items';
    const at = errorPosition(sql, 'near "items": syntax error at offset 16: SQLITE_ERROR')!;
    assert.equal(sql.slice(at.start, at.end), 'items');
    // The same offset in an earlier statement does not hold the token: not chosen.
    const two = 'SELECT name FROM items_x;\nSELECT name FRM items';
    const second = errorPosition(two, 'near "items": syntax error at offset 16: SQLITE_ERROR')!;
    assert.equal(second.start, two.lastIndexOf('items'));
    // Three two-byte characters before the token: SQLite's byte offset 20 is string index 17.
    const accents = 'SELECT "ééé" FRM x';
    const marked = errorPosition(accents, 'near "x": syntax error at offset 20: SQLITE_ERROR')!;
    assert.equal(accents.slice(marked.start, marked.end), 'x');
    assert.equal(errorPosition(sql, 'no such table: items: SQLITE_ERROR'), undefined);
  });
});
