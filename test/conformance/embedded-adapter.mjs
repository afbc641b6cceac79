// Conformance adapter: a fresh in-memory embedded database per scenario.
import { open } from '../../src/index.ts';

export async function makeDb() {
  return open(':memory:');
}

export async function closeDb(db) {
  db.close();
}
