// What the write log has to tell an operator (damage found in the history, a write the log could
// not take): one line each. Embedded, a plain line on stderr; a server's database host sets a
// reporter that writes its structured log lines.

export type ReportLevel = 'error' | 'warn';

export type Reporter = (level: ReportLevel, message: string, details: Record<string, unknown>) => void;

const plain: Reporter = (level, message) => {
  process.stderr.write(`dione: ${level}: ${message}\n`);
};

let reporter: Reporter = plain;

/** Where the write log's reports go from now on (default: a line on stderr). */
export function setHistoryReporter(next: Reporter): void {
  reporter = next;
}

export function report(level: ReportLevel, message: string, details: Record<string, unknown> = {}): void {
  try {
    reporter(level, message, details);
  } catch {
    // reporting never stops the log
  }
}
