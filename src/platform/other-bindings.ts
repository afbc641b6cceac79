// The bindings of a wrangler config that are neither D1 databases nor vars (KV, R2, Durable
// Objects, services, queues, ...): Dione does not provide them, and getPlatformProxy says so once.
import type { WranglerProject } from './project.ts';

type Shape =
  | 'list' // [{ binding }]
  | 'named list' // [{ name }]
  | 'one' // { binding }
  | 'names' // { NAME: value }
  | 'bindings' // { bindings: [{ name }] }
  | 'producers'; // { producers: [{ binding }] }

// Every binding kind of wrangler's config (4.86), by the shape its key holds.
const KINDS: Record<string, Shape> = {
  kv_namespaces: 'list',
  r2_buckets: 'list',
  services: 'list',
  workflows: 'list',
  analytics_engine_datasets: 'list',
  dispatch_namespaces: 'list',
  mtls_certificates: 'list',
  hyperdrive: 'list',
  vectorize: 'list',
  ai_search_namespaces: 'list',
  ai_search: 'list',
  pipelines: 'list',
  secrets_store_secrets: 'list',
  artifacts: 'list',
  unsafe_hello_world: 'list',
  flagship: 'list',
  worker_loaders: 'list',
  vpc_services: 'list',
  vpc_networks: 'list',
  send_email: 'named list',
  ratelimits: 'named list',
  browser: 'one',
  ai: 'one',
  images: 'one',
  stream: 'one',
  version_metadata: 'one',
  media: 'one',
  assets: 'one',
  wasm_modules: 'names',
  text_blobs: 'names',
  data_blobs: 'names',
  durable_objects: 'bindings',
  logfwdr: 'bindings',
  unsafe: 'bindings',
  queues: 'producers',
};

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function names(entries: unknown, field: string): string[] {
  return Array.isArray(entries) ? entries.map((e) => record(e)[field]).filter((n): n is string => typeof n === 'string') : [];
}

function bindingNames(value: unknown, shape: Shape): string[] {
  switch (shape) {
    case 'list':
      return names(value, 'binding');
    case 'named list':
      return names(value, 'name');
    case 'one':
      return names([value], 'binding');
    case 'names':
      return Object.keys(record(value));
    case 'bindings':
      return names(record(value).bindings, 'name');
    case 'producers':
      return names(record(value).producers, 'binding');
  }
}

/** "KV (kv_namespaces)" for every binding env will not have, grouped by kind. */
export function otherBindings(project: WranglerProject): string[] {
  return Object.entries(KINDS).flatMap(([key, shape]) =>
    project.section[key] === undefined ? [] : bindingNames(project.section[key], shape).map((name) => `${name} (${key})`),
  );
}
