// What a cluster node answers when it cannot serve a request (in D1's voice). A module of its own,
// so that processes outside cluster mode need not load the NATS client to know them.

export const NOT_DURABLE = 'D1 DB could not make this write durable: the write log is unreachable or another node is now the primary. Nothing was acknowledged; retry.';
export const UNAVAILABLE = 'D1 DB is unavailable on this node: it has no copy it can vouch for while the write log (NATS) is unreachable; retry.';
