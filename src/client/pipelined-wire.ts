// Version 2 of dione/client's wire format (docs/wire-format.md): several calls in one request,
// `{"version": 2, "calls": [...]}`, answered `{"version": 2, "answers": [{"status", "body"}, ...]}`,
// where each call and each answer body is exactly a version 1 request and response.

/** The request body for calls already encoded as version 1 bodies (JSON text, joined as it is). */
export function pipelinedBody(calls: string[]): string {
  return `{"version":2,"calls":[${calls.join(',')}]}`;
}

export interface CallAnswer {
  status: number;
  body: unknown;
}

/**
 * The answers of a version 2 response, one per call; undefined when the body is not one (the
 * request failed as a whole), or why a body that is one cannot be used.
 */
export function pipelinedAnswers(json: unknown, calls: number): CallAnswer[] | { malformed: string } | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const { version, answers } = json as { version?: unknown; answers?: unknown };
  if (version !== 2) return undefined;
  if (!Array.isArray(answers)) return { malformed: '"answers" is not an array' };
  if (answers.length !== calls) return { malformed: `${calls} calls were sent, but it holds ${answers.length} answer${answers.length === 1 ? '' : 's'}` };
  const at = answers.findIndex((a) => typeof a !== 'object' || a === null || typeof (a as CallAnswer).status !== 'number');
  return at < 0 ? (answers as CallAnswer[]) : { malformed: `answers[${at}] is not an object with a status` };
}
