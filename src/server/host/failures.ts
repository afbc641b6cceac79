// What a host call can fail with, as the server sees it. The protocols turn these into status codes
// and envelopes; a point of history that cannot be honoured is the api's HistoryError.
import { HistoryError } from '../../api/time-travel.ts';
import type { ForwardTarget, HostFailureData } from './protocol.ts';

/** The database could not be served: its worker ended, the server is stopping, or it was deleted. `message` is D1's text. */
export class HostUnavailable extends Error {
  override name = 'HostUnavailable';
  constructor(
    readonly kind: 'crashed' | 'closing' | 'deleted',
    message: string,
  ) {
    super(message);
  }
}

export const HOST_MESSAGES = {
  crashed: 'Internal error in D1 DB storage caused object to be reset.',
  closing: 'D1 DB is shutting down.',
  deleted: 'Database not found: it was deleted.',
} as const;

/** Cluster mode: another node writes this database (`holder`; null while none is known). */
export class NotPrimary extends Error {
  override name = 'NotPrimary';
  constructor(readonly holder: ForwardTarget | null) {
    super(holder ? `the primary of this database is node ${holder.node}` : 'this database has no primary right now');
  }
}

/** The database refuses work until its write log can be repaired; the message says why. */
export class DatabaseRefused extends Error {
  override name = 'DatabaseRefused';
}

/** The host failed otherwise (a file it could not open, an operation that threw). */
export class HostError extends Error {
  override name = 'HostError';
}

export function failureFrom(data: HostFailureData): Error {
  switch (data.kind) {
    case 'history':
      return new HistoryError(data.message);
    case 'not-primary':
      return new NotPrimary(data.holder);
    case 'refused':
      return new DatabaseRefused(data.message);
    case 'error':
      return new HostError(data.message);
  }
}
