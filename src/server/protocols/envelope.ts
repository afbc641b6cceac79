// Cloudflare API v4 envelopes and the D1 error codes Dione uses.

export const ErrorCodes = {
  badRequest: 7400,
  forbidden: 7403,
  notFound: 7404,
  nameTaken: 7502,
  sql: 7500,
  notImplemented: 7501,
  authentication: 10000,
  tooLarge: 7413,
  timeout: 7429,
  tooManyRequests: 7429,
} as const;

export function success<T>(result: T, resultInfo?: Record<string, number>) {
  return { result, success: true, errors: [], messages: [], ...(resultInfo ? { result_info: resultInfo } : {}) };
}

export function envelopeError(code: number, message: string) {
  return { result: null, success: false, errors: [{ code, message }], messages: [] };
}
