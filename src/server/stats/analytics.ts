// An analytics question as every node answers it for its own statistics: a filter, the dimensions
// to group by, and the databases the caller's token reaches. Plain JSON, so it can travel to other
// nodes (cluster-query-stats.ts).
import { compileFilter } from './filter.ts';
import { type Dimension, type Group, groupRows } from './groups.ts';
import type { QueryStatsRecorder } from './recorder.ts';

export interface StatsQuestion {
  filter: unknown;
  dimensions: Dimension[];
  /** Only these databases (a token made for one database); all when absent. */
  databases?: string[];
}

/** Where answers come from: this node's statistics, or the whole cluster's. */
export interface StatsSource {
  groups(question: StatsQuestion): Promise<Group[]>;
}

/** This node's groups for a question. Throws FilterError for a filter it cannot apply. */
export function localGroups(recorder: QueryStatsRecorder, question: StatsQuestion): Group[] {
  const filter = compileFilter(question.filter, question.databases);
  return groupRows(recorder.rows(filter.bounds).filter(filter.test), question.dimensions);
}

export function localSource(recorder: QueryStatsRecorder): StatsSource {
  return { groups: async (question) => localGroups(recorder, question) };
}
