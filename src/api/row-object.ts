// A row as an object, built the way D1's runtime builds it (workerd: Object.fromEntries over the
// columns): every column an own property, the last of several same-named columns winning, and a
// column named `__proto__` a plain property rather than the object's prototype.

/** Sets column `name` of `row` to `value`. */
export function setColumn<T>(row: Record<string, T>, name: string, value: T): void {
  if (name === '__proto__') Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
  else row[name] = value;
}
