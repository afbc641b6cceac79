// Messages between the server and the per-database host processes.

export type WireProtocol = 'dione' | 'd1' | 'rest-query' | 'rest-raw';

export interface DumpOptions {
  noSchema?: boolean;
  noData?: boolean;
  tables?: string[];
}

export type HostRequest =
  | { id: number; op: 'open'; file: string; servedBy: string }
  | {
      id: number;
      op: 'execute';
      protocol: WireProtocol;
      /** The HTTP request body, as received. */
      body: string;
      /** D1 binding protocol: the resultsFormat query parameter and the session header. */
      resultsFormat?: string;
      session?: string;
      /** The caller may only read. */
      readOnly: boolean;
    }
  | { id: number; op: 'export'; file: string; options: DumpOptions }
  | { id: number; op: 'import'; file: string }
  | { id: number; op: 'backup'; file: string }
  | { id: number; op: 'info' };

export interface HostReply {
  id: number;
  status: number;
  body: string;
  bookmark?: string;
  /** Rows read and written (meta sums), for logs and metrics. */
  rows?: [number, number];
}

export interface DatabaseInfo {
  num_tables: number;
  file_size: number;
  bookmark: string;
}
