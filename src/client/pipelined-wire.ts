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

/** The answers of a version 2 response, one per call; undefined when the body is not one (the request failed as a whole). */
export function pipelinedAnswers(json: unknown, calls: number): CallAnswer[] | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const { version, answers } = json as { version?: unknown; answers?: unknown };
  if (version !== 2 || !Array.isArray(answers) || answers.length !== calls) return undefined;
  const valid = answers.every((a) => typeof a === 'object' && a !== null && typeof (a as CallAnswer).status === 'number');
  return valid ? (answers as CallAnswer[]) : undefined;
}
