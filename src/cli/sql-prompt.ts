// An interactive SQL prompt over a D1Database (or a script read from a pipe): each statement runs
// through the binding, exactly as a Worker's would.
import readline from 'node:readline';
import type { D1Database } from '../binding/database.ts';
import { splitStatements } from '../sql/statements.ts';
import { formatTable } from './table.ts';

export interface PromptIO {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  interactive: boolean;
}

const HELP = `Enter SQL ending with ";" (a statement may span lines).
  .tables   list tables
  .help     this text
  .quit     leave (or Ctrl-D)`;

async function runStatement(db: D1Database, sql: string, out: NodeJS.WritableStream): Promise<boolean> {
  try {
    const result = await db.prepare(sql).all();
    const rows = result.results as Record<string, unknown>[];
    if (rows.length > 0) out.write(`${formatTable(Object.keys(rows[0]!), rows.map((r) => Object.values(r)))}\n`);
    const m = result.meta;
    out.write(`ok: ${rows.length} row(s), changes ${m.changes}, last_row_id ${m.last_row_id}, ${m.duration.toFixed(2)} ms\n`);
    return true;
  } catch (e) {
    out.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return false;
  }
}

/** Runs the prompt until end of input; resolves to the number of statements that failed. */
export async function sqlPrompt(db: D1Database, io: PromptIO): Promise<number> {
  const rl = readline.createInterface({ input: io.input, output: io.interactive ? io.output : undefined, terminal: io.interactive });
  const out = io.output;
  let buffer = '';
  let failures = 0;
  const prompt = () => {
    if (io.interactive) {
      rl.setPrompt(buffer ? '   ...> ' : 'dione> ');
      rl.prompt();
    }
  };
  prompt();
  for await (const line of rl) {
    if (!buffer && line.trim().startsWith('.')) {
      const command = line.trim();
      if (command === '.quit' || command === '.exit') break;
      if (command === '.help') out.write(`${HELP}\n`);
      else if (command === '.tables') {
        await runStatement(db, "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name", out);
      } else out.write(`unknown command ${command}; try .help\n`);
      prompt();
      continue;
    }
    buffer += (buffer ? '\n' : '') + line;
    const statements = splitStatements(buffer);
    if (statements.length > 0 && statements.at(-1)!.terminated) {
      for (const statement of statements) {
        if (statement.empty) continue;
        if (!(await runStatement(db, statement.text, out))) failures++;
      }
      buffer = '';
    } else if (statements.length === 0) buffer = '';
    prompt();
  }
  if (buffer.trim()) {
    for (const statement of splitStatements(buffer)) if (!statement.empty && !(await runStatement(db, statement.text, out))) failures++;
  }
  rl.close();
  return failures;
}
