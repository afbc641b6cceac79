// dione/platform: wrangler's getPlatformProxy() over Dione, for Node processes that run Worker-style
// code outside workerd (next dev, next start, scripts, tests).
export { getPlatformProxy } from './platform-proxy.ts';
export type { GetPlatformProxyOptions, PlatformProxy } from './platform-proxy.ts';
export type { D1Placement, DioneServer } from './d1-bindings.ts';
export type { Cache, CacheStorage, ExecutionContext, LocalCfProperties } from './worker-context.ts';
