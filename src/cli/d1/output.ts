// Output for the d1 commands: wrangler's style for humans (tables, emoji lines, colour only on a
// TTY), JSON for scripts, and failures that say what to do next with a non-zero exit.
import { formatTable } from '../table.ts';

/** A failure the user can act on: its message is printed as is, and the command exits 1. */
export class CliError extends Error {}

const colourful = () => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: number) => (text: string) => (colourful() ? `\x1b[${code}m${text}\x1b[0m` : text);
export const red = paint(31);
export const green = paint(32);
export const dim = paint(2);

export function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** A result set as a table: the columns of the first row. */
export function resultTable(rows: Record<string, unknown>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return formatTable(
    columns,
    rows.map((r) => columns.map((c) => r[c])),
  );
}

export function errorText(e: unknown): string {
  if (e instanceof CliError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Runs a command body; any failure is printed (as JSON when asked) and sets exit code 1. */
export async function run(json: boolean | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const text = errorText(e);
    if (json) process.stdout.write(`${JSON.stringify({ error: { text } }, null, 2)}\n`);
    else process.stderr.write(`${red('✘ [ERROR]')} ${text}\n`);
    process.exitCode = 1;
  }
}
