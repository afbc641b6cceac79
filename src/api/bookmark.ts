// D1 bookmarks: four lowercase hex groups (8-8-8-32) that sort in commit order as plain strings.

export const BOOKMARK_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

export const SESSION_CONSTRAINTS = new Set(['first-primary', 'first-unconstrained']);

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** The bookmark of commit number `sequence` (a database's commits are numbered from 1). */
export function formatBookmark(sequence: number, databaseTag = '0'.repeat(32)): string {
  return `${hex8(Math.floor(sequence / 2 ** 32))}-${hex8(sequence % 2 ** 32)}-00000000-${databaseTag}`;
}

export function isBookmark(value: string): boolean {
  return BOOKMARK_PATTERN.test(value);
}

/** The commit number and history tag a bookmark names, or undefined for a malformed one. */
export function parseBookmark(value: string): { sequence: number; tag: string } | undefined {
  if (!isBookmark(value)) return undefined;
  const sequence = Number.parseInt(value.slice(0, 8), 16) * 2 ** 32 + Number.parseInt(value.slice(9, 17), 16);
  return { sequence, tag: value.slice(27) };
}
