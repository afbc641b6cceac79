// The order a SQL dump creates things in, so that it imports into an empty database whatever order
// they were made in: a table's rows after the rows of the tables it references, a view after the
// views it reads.
import { asciiLower, identifier, tokenize } from '../sql/lexer.ts';

/**
 * `items` rearranged so that each comes after the items it depends on (named by `dependencies`),
 * keeping their given order otherwise. Names compare as SQLite compares them (ASCII case folded).
 * A cycle (or a dependency read where there is none) is broken at its first item in the given order.
 */
export function dependencyOrder<T>(items: T[], nameOf: (item: T) => string, dependencies: (item: T) => Iterable<string>): T[] {
  const remaining = new Map(items.map((item) => [asciiLower(nameOf(item)), item]));
  const needs = new Map<T, string[]>();
  for (const [name, item] of remaining) needs.set(item, [...new Set(Array.from(dependencies(item), asciiLower))].filter((d) => d !== name));
  const ordered: T[] = [];
  while (remaining.size > 0) {
    let next = remaining.keys().next().value!;
    for (const [name, item] of remaining) {
      if (!needs.get(item)!.some((d) => remaining.has(d))) {
        next = name;
        break;
      }
    }
    ordered.push(remaining.get(next)!);
    remaining.delete(next);
  }
  return ordered;
}

/**
 * Every name `sql` mentions (bare, quoted, or as a string, which SQLite also takes as a name in
 * places): a superset of the tables and views a view reads.
 */
export function namesIn(sql: string): string[] {
  const names: string[] = [];
  for (const token of tokenize(sql)) {
    if (token.type !== 'word' && token.type !== 'quoted' && token.type !== 'string') continue;
    const name = identifier(sql, token);
    if (name !== undefined) names.push(name);
  }
  return names;
}
