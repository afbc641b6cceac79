// The web console in a real browser (Debian's chromium, playwright-core) against a real server:
// sign in, databases, SQL, the table browser with a row edit, Time Travel's restore and undo,
// tokens created and revoked, a read token's view, phone width. Each step's screenshot is checked
// for the elements the step expects (test/helpers/browser.ts); DIONE_SCREENSHOTS=<dir> keeps them.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserSkipReason, buildConsole, launchBrowser, screenshotDirectory, screenshotShowing } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

// What the functions run inside the page use (this project's TypeScript has no DOM library).
declare const document: any, window: any;

const skip = browserSkipReason();

describe('web console in chromium', { skip, timeout: 240_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const shots = screenshotDirectory();

  before(async () => {
    buildConsole();
    server = await startTestServer();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.setDefaultTimeout(15_000);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (!shots.keep) rmSync(shots.dir, { recursive: true, force: true });
  });

  const sql = async (database: string, text: string, params: unknown[] = []) => {
    const response = await server.call(`${server.api}/${database}/query`, { method: 'POST', body: JSON.stringify({ sql: text, params }) });
    const body = (await response.json()) as { success: boolean; result: { results: Record<string, unknown>[] }[]; errors: unknown };
    assert.ok(body.success, JSON.stringify(body.errors));
    return body.result.at(-1)!.results;
  };

  test('sign in: a wrong token is refused with the server\'s message, the admin token opens the databases page', async () => {
    await page.goto(server.url);
    const tokenInput = page.getByLabel('API token');
    await tokenInput.fill('dione_wrongwrongwro_0000000000000000000000000000000000000000000');
    await tokenInput.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'unknown or revoked token' }).waitFor();
    await screenshotShowing(page, shots.dir, '01-sign-in-refused', [page.getByRole('alert'), page.getByRole('button', { name: 'Sign in' })]);
    await tokenInput.fill(server.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await screenshotShowing(page, shots.dir, '02-databases-empty', [
      page.getByRole('heading', { name: 'Databases' }),
      page.getByText('admin token'),
      page.getByText('No databases yet.'),
    ]);
  });

  test('create a database, then run SQL: several statements, their rows and meta; an error marks its position', async () => {
    await page.getByLabel('New database name').fill('shop');
    await page.getByRole('button', { name: 'Create database' }).click();
    const link = page.getByRole('link', { name: 'shop', exact: true });
    await link.waitFor();
    // A bad name gets the server's wording.
    await page.getByLabel('New database name').fill('no spaces');
    await page.getByRole('button', { name: 'Create database' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid database name' }).waitFor();
    await link.click();
    await page.getByRole('link', { name: 'SQL console' }).click();
    await page.getByLabel('SQL').fill(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER);\nINSERT INTO items (name, price) VALUES ('apple', 3), ('pear', 5), ('fig', 9);\nSELECT name, price FROM items ORDER BY price DESC",
    );
    await page.getByRole('button', { name: 'Run' }).click();
    const results = page.getByRole('region', { name: 'Statement 3 rows' });
    await results.getByRole('cell', { name: 'fig' }).waitFor();
    assert.deepEqual(await results.locator('tbody tr td:first-child').allTextContents(), ['fig', 'pear', 'apple']);
    await page.getByText('rows written 3').waitFor();
    await screenshotShowing(page, shots.dir, '03-sql-results', [results, page.getByText('3 statements in')]);

    await page.getByLabel('SQL').fill('SELECT 1;\nSELECT name FRM items');
    await page.getByLabel('SQL').press('Control+Enter');
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: 'near "items": syntax error at offset 16' }).waitFor();
    assert.equal(await page.locator('.sql-error mark').textContent(), 'items');
    await screenshotShowing(page, shots.dir, '04-sql-error', [alert, page.locator('.sql-error mark')]);

    // A huge result is drawn a thousand rows at a time, saying so.
    await page.getByLabel('SQL').fill('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) SELECT x FROM c');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByText('Showing the first 1000 of 1500 rows').waitFor();
    assert.equal(await page.getByRole('region', { name: 'Statement 1 rows' }).locator('tbody tr').count(), 1000);
  });

  test('table browser: schema, sort, filter, and a row edited by a write token lands in the database', async () => {
    await page.getByRole('link', { name: 'Tables', exact: true }).click();
    await page.getByRole('navigation', { name: 'Tables' }).getByRole('link', { name: 'items' }).click();
    const rows = page.getByRole('region', { name: 'Rows of items' });
    await rows.getByRole('cell', { name: 'pear' }).waitFor();
    await page.getByText('Schema: 3 columns').click();
    await page.getByRole('region', { name: 'Columns' }).getByRole('cell', { name: 'price' }).waitFor();

    await rows.getByRole('button', { name: /^Sort by price/ }).click();
    await rows.getByRole('button', { name: 'Sort by price, now ascending' }).click();
    await rows.getByRole('button', { name: 'Sort by price, now descending' }).waitFor();
    await page.waitForFunction(() => document.querySelector('[aria-label="Rows of items"] tbody td:nth-child(2)')?.textContent === 'fig');

    await page.getByLabel('Filter column').selectOption('price');
    await page.getByLabel('Operator').selectOption('<');
    await page.getByLabel('Value').fill('6');
    await page.getByRole('button', { name: 'Apply filter' }).click();
    await page.getByText('2 rows match').waitFor();
    assert.equal(await rows.getByRole('cell', { name: 'fig' }).count(), 0);
    await screenshotShowing(page, shots.dir, '05-table-filtered', [rows, page.getByText('2 rows match'), page.getByRole('button', { name: 'Clear filter' })]);

    // Descending by price under the filter: pear (5) first.
    await rows.getByRole('button', { name: 'Edit row 1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit row of items' });
    await dialog.getByRole('textbox', { name: /^price/ }).fill('7');
    await screenshotShowing(page, shots.dir, '06-row-edit', [dialog.getByRole('textbox', { name: /^name/ }), dialog.getByRole('button', { name: 'Save row' })]);
    await dialog.getByRole('button', { name: 'Save row' }).click();
    await page.getByText('1 row match').waitFor(); // pear now costs 7: no longer < 6
    assert.deepEqual(await sql('shop', "SELECT price, typeof(price) AS t FROM items WHERE name = 'pear'"), [{ price: 7, t: 'integer' }]);
    await page.getByRole('button', { name: 'Clear filter' }).click();
    await page.getByText('3 rows', { exact: false }).first().waitFor();
  });

  test('rows are found again exactly: a column named rowid, a WITHOUT ROWID key, rowids past 2^53, a row gone meanwhile', async () => {
    await sql(
      'shop',
      "CREATE TABLE r (rowid TEXT, v TEXT); INSERT INTO r VALUES ('x', 'one'), ('x', 'two'); " +
        "CREATE TABLE w (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID; INSERT INTO w VALUES ('k', 1, 'first'), ('k', 2, 'second'); " +
        "CREATE TABLE big (v TEXT); INSERT INTO big (rowid, v) VALUES (9007199254740993, 'target'), (9007199254740992, 'victim')",
    );
    const open = async (table: string) => {
      await page.goto(`${server.url}/#/db/shop/tables/${table}`);
      const rows = page.getByRole('region', { name: `Rows of ${table}` });
      await rows.locator('tbody tr').first().waitFor();
      return rows;
    };
    // Ordered by the row key: 'two' is the second row; its rowid column holds 'x' as the first's does.
    let rows = await open('r');
    await rows.getByRole('button', { name: 'Delete row 2' }).click();
    await page.getByRole('dialog', { name: 'Delete this row?' }).getByRole('button', { name: 'Delete row' }).click();
    await page.getByText('1 row ·').waitFor();
    assert.deepEqual(await sql('shop', 'SELECT v FROM r'), [{ v: 'one' }]);

    rows = await open('w');
    await rows.getByRole('button', { name: 'Edit row 2' }).click();
    let dialog = page.getByRole('dialog', { name: 'Edit row of w' });
    await dialog.getByRole('textbox', { name: /^v/ }).fill('changed');
    await dialog.getByRole('button', { name: 'Save row' }).click();
    await rows.getByRole('cell', { name: 'changed' }).waitFor();
    assert.deepEqual(await sql('shop', 'SELECT b, v FROM w ORDER BY b'), [{ b: 1, v: 'first' }, { b: 2, v: 'changed' }]);

    // 9007199254740993 and …992 are one number in JSON; the edit must reach 'target' only.
    rows = await open('big');
    assert.equal(await rows.locator('tbody tr').nth(1).locator('td').first().textContent(), 'target');
    await rows.getByRole('button', { name: 'Edit row 2' }).click();
    dialog = page.getByRole('dialog', { name: 'Edit row of big' });
    await dialog.getByRole('textbox', { name: /^v/ }).fill('hit');
    await dialog.getByRole('button', { name: 'Save row' }).click();
    await rows.getByRole('cell', { name: 'hit' }).waitFor();
    assert.deepEqual(await sql('shop', 'SELECT CAST(rowid AS TEXT) AS id, v FROM big ORDER BY rowid'), [
      { id: '9007199254740992', v: 'victim' },
      { id: '9007199254740993', v: 'hit' },
    ]);

    // A row deleted by someone else after it was shown: the edit says so and changes nothing.
    await rows.getByRole('button', { name: 'Edit row 1' }).click();
    await sql('shop', "DELETE FROM big WHERE v = 'victim'");
    dialog = page.getByRole('dialog', { name: 'Edit row of big' });
    await dialog.getByRole('textbox', { name: /^v/ }).fill('ghost');
    await dialog.getByRole('button', { name: 'Save row' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'No row was changed' }).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.deepEqual(await sql('shop', "SELECT count(*) AS n FROM big WHERE v = 'ghost'"), [{ n: 0 }]);
    await page.goto(`${server.url}/#/db/shop/tables/items`);
  });

  test('Time Travel: commits as a chart, restore to a bookmark with confirmation, then undo it', async () => {
    const bookmarkNow = async () => {
      const response = await server.call(`${server.api}/shop/time_travel/bookmark`);
      return ((await response.json()) as { result: { bookmark: string } }).result.bookmark;
    };
    const before = await bookmarkNow();
    await sql('shop', 'DELETE FROM items');
    await page.getByRole('link', { name: 'Time Travel' }).click();
    const chart = page.getByRole('figure').filter({ has: page.locator('canvas') }).first();
    await chart.waitFor();
    const recent = page.getByRole('region', { name: 'Recent commits' }).last(); // the table's, inside the section of that name
    await recent.getByRole('button', { name: /^Restore to this commit/ }).first().waitFor();
    await screenshotShowing(page, shots.dir, '07-time-travel', [page.getByRole('heading', { name: 'Commits over time' }), chart, recent]);

    await page.getByLabel('Restore to bookmark').fill(before);
    await page.getByRole('form', { name: 'Restore to a bookmark' }).getByRole('button', { name: 'Restore…' }).click();
    const confirm = page.getByRole('dialog', { name: 'Restore shop?' });
    await screenshotShowing(page, shots.dir, '08-restore-confirm', [confirm.getByRole('button', { name: 'Restore' })]);
    await confirm.getByRole('button', { name: 'Restore', exact: true }).click();
    await page.getByText('The database was restored.').waitFor();
    const undo = page.getByRole('button', { name: 'Undo restore' });
    assert.equal((await sql('shop', 'SELECT count(*) AS n FROM items'))[0]!.n, 3);
    await screenshotShowing(page, shots.dir, '09-restored', [undo]);

    await undo.click();
    await page.getByRole('dialog', { name: 'Undo the last restore of shop?' }).getByRole('button', { name: 'Undo restore' }).click();
    await page.getByText('The restore was undone.').waitFor();
    assert.equal((await sql('shop', 'SELECT count(*) AS n FROM items'))[0]!.n, 0);
    // Back to the three rows for the steps after this one.
    await page.getByLabel('Restore to bookmark').fill(before);
    await page.getByRole('form', { name: 'Restore to a bookmark' }).getByRole('button', { name: 'Restore…' }).click();
    await page.getByRole('dialog', { name: 'Restore shop?' }).getByRole('button', { name: 'Restore', exact: true }).click();
    await page.getByText('The database was restored.').waitFor();
    assert.equal((await sql('shop', 'SELECT count(*) AS n FROM items'))[0]!.n, 3);

    // Fork (admin): a new database equal to this one now, linked from the page.
    const fork = page.getByRole('form', { name: 'Fork into a new database' });
    await fork.getByLabel('New database name').fill('shop-copy');
    await fork.getByRole('button', { name: 'Fork into a new database' }).click();
    await page.getByRole('link', { name: 'shop-copy' }).waitFor();
    assert.deepEqual(await sql('shop-copy', 'SELECT name FROM items ORDER BY id'), await sql('shop', 'SELECT name FROM items ORDER BY id'));
  });

  test('query insights: the statements run so far, ranked, with a chart of queries over time', async () => {
    await page.getByRole('link', { name: 'Query insights' }).click();
    await page.getByRole('heading', { name: 'Query insights' }).waitFor();
    const top = page.getByRole('region', { name: /^Top queries by/ });
    // Statistics are recorded as statements are answered; refresh until the table shows them.
    const deadline = Date.now() + 15_000;
    while (!(await top.getByText('FROM items', { exact: false }).first().isVisible()) && Date.now() < deadline) {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await new Promise((r) => setTimeout(r, 500));
    }
    await top.getByText('FROM items', { exact: false }).first().waitFor();
    await screenshotShowing(page, shots.dir, '10-insights', [top, page.getByRole('figure').first()]);
  });

  test('tokens: an admin creates a read token (shown once) and revokes it; the read token sees no write controls', async () => {
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Token name').fill('dashboard reader');
    await page.getByRole('combobox', { name: /^Scope/ }).selectOption('read');
    await page.getByLabel(/^Database/).fill('shop');
    await page.getByRole('button', { name: 'Create token' }).click();
    const shown = page.getByLabel('New token (shown once: copy it now)');
    await shown.waitFor();
    const readToken = await shown.inputValue();
    assert.match(readToken, /^dione_[A-Za-z0-9]{12}_/);
    const row = page.getByRole('row').filter({ hasText: 'dashboard reader' });
    await row.getByRole('cell', { name: 'shop' }).waitFor();
    await screenshotShowing(page, shots.dir, '11-token-created', [shown, row]);

    // The read token, in a context of its own: it sees its one database, no create or edit controls,
    // and the server refuses its writes with D1's wording.
    const reader = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    try {
      await reader.goto(server.url);
      await reader.getByLabel('API token').fill(readToken);
      await reader.getByRole('button', { name: 'Sign in' }).click();
      await reader.getByText('read token').waitFor();
      await reader.getByRole('link', { name: 'shop', exact: true }).click();
      await reader.getByRole('link', { name: 'items' }).click();
      await reader.getByRole('region', { name: 'Rows of items' }).getByRole('cell', { name: 'pear' }).waitFor();
      assert.equal(await reader.getByRole('button', { name: /^Edit row/ }).count(), 0);
      assert.equal(await reader.getByRole('button', { name: 'Add row' }).count(), 0);
      assert.equal(await reader.getByRole('link', { name: 'Tokens' }).count(), 0);
      await screenshotShowing(reader, shots.dir, '12-read-token-table', [reader.getByRole('region', { name: 'Rows of items' }), reader.getByText('read token')]);
      await reader.getByRole('link', { name: 'SQL console' }).click();
      await reader.getByLabel('SQL').fill("DELETE FROM items WHERE name = 'fig'");
      await reader.getByRole('button', { name: 'Run' }).click();
      await reader.getByRole('alert').waitFor();
      assert.equal((await sql('shop', "SELECT count(*) AS n FROM items WHERE name = 'fig'"))[0]!.n, 1);
      await screenshotShowing(reader, shots.dir, '13-read-token-write-refused', [reader.getByRole('alert')]);
    } finally {
      await reader.close();
    }

    await row.getByRole('button', { name: 'Revoke token dashboard reader' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
    await row.waitFor({ state: 'detached' });
    // Grants are cached for up to two seconds.
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await server.call(`${server.api}/shop/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELECT 1' }), token: readToken })).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(status, 401);
  });

  test('phone width: the pages fit the screen (no sideways scrolling of the page) and stay usable', async () => {
    const phone = await browser.newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    try {
      await phone.goto(server.url);
      await phone.getByLabel('API token').fill(server.token);
      await phone.getByRole('button', { name: 'Sign in' }).click();
      for (const hash of ['#/', '#/db/shop/tables/items', '#/db/shop/sql', '#/tokens']) {
        await phone.goto(`${server.url}/${hash}`);
        await phone.locator('main h1').first().waitFor();
        await phone.waitForLoadState('networkidle');
        const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${hash} is ${overflow}px wider than the phone`);
      }
      await phone.goto(`${server.url}/#/db/shop/tables/items`);
      await screenshotShowing(phone, shots.dir, '14-phone-table', [phone.getByRole('region', { name: 'Rows of items' }), phone.getByRole('button', { name: 'Edit row 1' })]);
    } finally {
      await phone.close();
    }
  });

  test('keyboard: signing in and reaching a database works without a mouse', async () => {
    const keys = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    try {
      await keys.goto(server.url);
      await keys.getByLabel('API token').waitFor();
      await keys.keyboard.press('Tab');
      assert.equal(await keys.evaluate(() => document.activeElement?.getAttribute('name')), 'token');
      await keys.keyboard.type(server.token);
      await keys.keyboard.press('Enter');
      await keys.getByRole('heading', { name: 'Databases' }).waitFor();
      // Tab through the page to the database's link, then follow it with Enter.
      for (let i = 0; i < 30; i++) {
        await keys.keyboard.press('Tab');
        if ((await keys.evaluate(() => document.activeElement?.textContent)) === 'shop') break;
      }
      await keys.keyboard.press('Enter');
      await keys.getByRole('heading', { name: 'shop' }).waitFor();
    } finally {
      await keys.close();
    }
  });
});

