// Errors the HTTP API answers with, and how the hosts' typed failures become them.
import type { z } from 'zod';
import { HistoryError } from '../../api/time-travel.ts';
import { DatabaseRefused, HostError, HostUnavailable, NotPrimary } from '../host/failures.ts';
import { ErrorCodes } from './envelope.ts';

/** An answer other than success: its status, D1's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The API's answer for a host failure (anything else is passed on as it is). */
export function apiErrorOf(e: unknown): unknown {
  if (e instanceof HistoryError) return new ApiError(400, ErrorCodes.badRequest, e.message);
  if (e instanceof NotPrimary) return new ApiError(503, ErrorCodes.sql, 'Another node became the primary of this database meanwhile; retry.');
  if (e instanceof DatabaseRefused || e instanceof HostUnavailable) return new ApiError(503, ErrorCodes.sql, e.message);
  if (e instanceof HostError) return new ApiError(500, ErrorCodes.sql, e.message);
  return e;
}

/** A JSON request body checked against its schema; an ApiError (400) says what is wrong. */
export async function jsonBody<T>(c: { req: { text(): Promise<string> } }, schema: z.ZodType<T>): Promise<T> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, ErrorCodes.badRequest, 'Request body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ApiError(400, ErrorCodes.badRequest, `Invalid request body${issue.path.length ? ` at ${issue.path.join('.')}` : ''}: ${issue.message}`);
  }
  return parsed.data;
}
