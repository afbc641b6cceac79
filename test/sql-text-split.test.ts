// splitSqlText and StatementSplitter (src/sql/text-splitter.ts): a REST query's or an imported file's SQL into
// statements, a window of text at a time (the lexer's tokens for a whole file of tens of MiB would
// take gigabytes). The statements are those of one split of the whole text, whatever falls across a
// window's edge: strings and names holding `;`, comments, trigger bodies, statements longer than a window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitSqlText, StatementSplitter } from '../src/sql/text-splitter.ts';
import { withoutLeadingTrivia } from '../src/sql/comments.ts';
import { splitStatements } from '../src/sql/statements.ts';

const whole = (sql: string) => splitStatements(sql).map((s) => (s.empty ? s.text : withoutLeadingTrivia(s.text)));

function mixed(count: number, seed: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    switch ((i * 7 + seed) % 9) {
      case 0:
        parts.push(`INSERT INTO t VALUES (${i}, 'a;b ''q'' ${'x'.repeat((i * 13) % 200)}');\n`);
        break;
      case 1:
        parts.push(`-- a comment; with a semicolon ${i}\n`);
        break;
      case 2:
        parts.push(`CREATE TRIGGER tr${i} AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); UPDATE u SET v = 2; END;\n`);
        break;
      case 3:
        parts.push(`/* block ; ${i} */ SELECT ${i};`);
        break;
      case 4:
        parts.push(`INSERT INTO b VALUES (x'${'ab'.repeat((i * 7) % 300)}');\n`);
        break;
      case 5:
        parts.push(';\n');
        break;
      case 6:
        parts.push(`SELECT "we;ird", [br;acket], \`b;ack\` FROM t${i};\r\n`);
        break;
      case 7:
        parts.push(`SELECT 'é😀;' || ${i};`);
        break;
      default:
        parts.push(`INSERT INTO big VALUES ('${'y;'.repeat(i % 101 === 0 ? 700_000 : 10)}');\n`);
    }
  }
  return parts.join('');
}

test('a text of several windows splits as the whole text does, wherever the windows end', () => {
  for (const seed of [0, 1, 2, 3]) {
    const sql = `${mixed(40_000 + seed * 997, seed)}SELECT 'the last, with no semicolon'`;
    assert.ok(sql.length > 3 * (1 << 20), `text of ${sql.length} characters spans several windows`);
    const expected = whole(sql);
    assert.deepEqual(splitSqlText(sql), expected, `seed ${seed}`);
    assert.deepEqual(splitSqlText(sql, 1234), expected.slice(0, 1234), `seed ${seed}, the first 1234`);
  }
});

test('a string or comment left open at the end of the text is the last statement, as in one split', () => {
  const open = `${'SELECT 1;\n'.repeat(200_000)}SELECT 'never closed; ${'z'.repeat(10)}`;
  assert.deepEqual(splitSqlText(open), whole(open));
  const comment = `${'SELECT 2;\n'.repeat(200_000)}/* open comment; SELECT 3;`;
  assert.deepEqual(splitSqlText(comment), whole(comment));
});

test('pieces of any size, down to single characters, split as the whole text does', () => {
  const sql = `${mixed(3_000, 5)}\nSELECT 'tail; no semicolon' -- and a comment`;
  const expected = whole(sql);
  for (const size of [1, 7, 64, 1000, 65_537]) {
    const splitter = new StatementSplitter();
    const got: string[] = [];
    for (let at = 0; at < sql.length; at += size) got.push(...splitter.push(sql.slice(at, at + size)));
    got.push(...splitter.end());
    assert.deepEqual(got, expected, `pieces of ${size}`);
  }
});

test('a statement far longer than the pieces is read a bounded number of times', () => {
  // 8 MiB of one INSERT in pieces of 4 KiB: re-reading it with every piece would lex ~8 GiB.
  const rows = Array.from({ length: 200_000 }, (_, i) => `(${i}, 'v;${'w'.repeat(30)}')`).join(',');
  const sql = `INSERT INTO t VALUES ${rows};\nSELECT 1;`;
  const splitter = new StatementSplitter();
  const got: string[] = [];
  for (let at = 0; at < sql.length; at += 4096) got.push(...splitter.push(sql.slice(at, at + 4096)));
  got.push(...splitter.end());
  assert.deepEqual(got, whole(sql));
  assert.ok(splitter.lexed < 4 * sql.length, `${splitter.lexed} characters lexed for a text of ${sql.length}`);
});

test('a limit counts statements across pieces', () => {
  const sql = 'SELECT 1;\n'.repeat(300_000);
  assert.deepEqual(splitSqlText(sql, 250_001), whole(sql).slice(0, 250_001));
});

test('a statement still unfinished past the longest allowed is handed out as it stands, and nothing after it is read', () => {
  // Found by an attacker's review: 16 MiB of one `SELECT 1+1+…` in an import was lexed whole (~3 GB).
  const splitter = new StatementSplitter(Number.POSITIVE_INFINITY, 1000);
  const got: string[] = [];
  got.push(...splitter.push('SELECT 1;\n-- a comment\nSELECT '));
  for (let i = 0; i < 10_000; i++) got.push(...splitter.push('1+'.repeat(50)));
  got.push(...splitter.push('1; SELECT 2;'));
  got.push(...splitter.end('SELECT 3;'));
  assert.equal(got.length, 2);
  assert.equal(got[0], 'SELECT 1;');
  assert.ok(got[1]!.startsWith('SELECT 1+1+') && got[1]!.length > 1000 && got[1]!.length < 2000, `${got[1]!.length} characters`);
  assert.ok(splitter.lexed < 20_000, `${splitter.lexed} characters lexed for ~1 MB of text`);
  // Long comments before a statement do not count, nor do long statements that end.
  const comments = new StatementSplitter(Number.POSITIVE_INFINITY, 1000);
  const text = `/* ${'c'.repeat(5000)} */ SELECT 'x';\nSELECT '${'y'.repeat(900)}';`;
  const pieces: string[] = [];
  for (let at = 0; at < text.length; at += 700) pieces.push(...comments.push(text.slice(at, at + 700)));
  pieces.push(...comments.end());
  assert.deepEqual(pieces, whole(text));
});

