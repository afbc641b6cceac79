// splitSqlText (src/server/protocols/requests.ts): a REST query's or an imported file's SQL into
// statements, a window of text at a time (the lexer's tokens for a whole file of tens of MiB would
// take gigabytes). The statements are those of one split of the whole text, whatever falls across a
// window's edge: strings and names holding `;`, comments, trigger bodies, statements longer than a window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitSqlText } from '../src/server/protocols/requests.ts';
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
