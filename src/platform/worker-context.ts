// The request-side objects getPlatformProxy hands out besides env, as wrangler's do: a Worker's
// ExecutionContext and the Cache API whose methods do nothing, and the `cf` properties of a
// request (here those of a local one: Dione never sees Cloudflare's edge).

export class ExecutionContext {
  readonly props: Record<string, unknown> = {};
  waitUntil(_promise: Promise<unknown>): void {}
  passThroughOnException(): void {}
}

export class Cache {
  async delete(_request: unknown, _options?: { ignoreMethod?: boolean }): Promise<boolean> {
    return false;
  }
  async match(_request: unknown, _options?: { ignoreMethod?: boolean }): Promise<undefined> {
    return undefined;
  }
  async put(_request: unknown, _response: unknown): Promise<void> {}
}

export class CacheStorage {
  readonly #default = new Cache();
  async open(_cacheName: string): Promise<Cache> {
    return new Cache();
  }
  get default(): Cache {
    return this.#default;
  }
}

/** The `cf` object of a request from this machine: no edge location, no geolocation, plain HTTP. */
export interface LocalCfProperties extends Record<string, unknown> {
  colo: string;
  country: string;
  asn: number;
  asOrganization: string;
  httpProtocol: string;
  clientTcpRtt: number;
  tlsVersion: string;
  tlsCipher: string;
  requestPriority: string;
}

export function localCf(): LocalCfProperties {
  return Object.freeze({
    // "XX" is Cloudflare's country code for a client it cannot place.
    colo: 'LOCAL',
    country: 'XX',
    asn: 0,
    asOrganization: '',
    httpProtocol: 'HTTP/1.1',
    clientTcpRtt: 0,
    tlsVersion: '',
    tlsCipher: '',
    requestPriority: '',
  });
}
