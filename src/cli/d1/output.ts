// Output for the d1 commands: wrangler's style for humans (tables, emoji lines, colour only on a
// TTY), JSON for scripts, and failures that say what to do next with a non-zero exit.
import { formatTable } from '../table.ts';

/**
 * A failure the user can act on; the command exits 1. The message is what wrangler says (--json
 * prints it alone); a person reads it followed by the hint, or `human` in its place.
 */
export class CliError extends Error {
  readonly hint: string | undefined;
  private readonly human: string | undefined;

  constructor(message: string, { hint, human }: { hint?: string; human?: string } = {}) {
    super(message);
    this.hint = hint;
    this.human = human;
  }

  /** What a person reads. */
  get text(): string {
    return this.human ?? (this.hint ? `${this.message}\n${this.hint}` : this.message);
  }

  /** The `error` --json prints, in wrangler's shape. */
  json(): Record<string, unknown> {
    return { text: this.message };
  }
}

const colourful = () => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: number) => (text: string) => (colourful() ? `\x1b[${code}m${text}\x1b[0m` : text);
export const red = paint(31);
export const green = paint(32);
export const dim = paint(2);

export function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** wrangler's rule for `execute`: result tables on a terminal; JSON with --json and wherever stdout is not one (a pipe, a file). */
export const resultsAsTables = (json?: boolean) => !json && Boolean(process.stdout.isTTY);

/** A result set as a table: the columns of the first row. */
export function resultTable(rows: Record<string, unknown>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return formatTable(
    columns,
    rows.map((r) => columns.map((c) => r[c])),
  );
}

/** A failure as a person reads it. */
export function errorText(e: unknown): string {
  if (e instanceof CliError) return e.text;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The `error` object --json prints: wrangler's. A D1 error is its message without the D1_ERROR prefix (its cause's), as wrangler prints it. */
export function errorJson(e: unknown): Record<string, unknown> {
  if (e instanceof CliError) return e.json();
  if (e instanceof Error) return { text: e.cause instanceof Error ? e.cause.message : e.message };
  return { text: String(e) };
}

/** Runs a command body; any failure is printed (as JSON when asked) and sets exit code 1. */
export async function run(json: boolean | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (json) process.stdout.write(`${JSON.stringify({ error: errorJson(e) }, null, 2)}\n`);
    else process.stderr.write(`${red('✘ [ERROR]')} ${errorText(e)}\n`);
    process.exitCode = 1;
  }
}
