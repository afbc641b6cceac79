// D1 bookmarks: four lowercase hex groups (8-8-8-32) that sort in commit order as plain strings.

export const BOOKMARK_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

export const SESSION_CONSTRAINTS = new Set(['first-primary', 'first-unconstrained']);

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** A bookmark for a position: `epoch` orders generations of a database, `sequence` commits within one. */
export function formatBookmark(epoch: number, sequence: number, databaseTag = '0'.repeat(32)): string {
  return `${hex8(epoch)}-${hex8(sequence)}-00000000-${databaseTag}`;
}

export function isBookmark(value: string): boolean {
  return BOOKMARK_PATTERN.test(value);
}
