// Plain-text result tables for the terminal.

function cell(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Array.isArray(value)) return `x'${value.map((b: number) => b.toString(16).padStart(2, '0')).join('')}'`;
  return String(value);
}

/** A boxed table of `columns` and `rows`, one line per row. */
export function formatTable(columns: string[], rows: unknown[][]): string {
  const cells = rows.map((row) => row.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (parts: string[]) => `│ ${parts.map((p, i) => p.padEnd(widths[i]!)).join(' │ ')} │`;
  const rule = (l: string, m: string, r: string) => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  return [rule('┌', '┬', '┐'), line(columns), rule('├', '┼', '┤'), ...cells.map(line), rule('└', '┴', '┘')].join('\n');
}
