// Records keyed by names users choose (detector names, templates, series keys). A name such as
// `__proto__` or `constructor` is valid, so these records have no prototype and reads check own
// properties: on a plain `{}`, `r["constructor"]` is Object and `r["__proto__"] = x` replaces the
// prototype instead of adding an entry.

/** An empty record with no prototype (Immer copies such objects keeping the null prototype). */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** The entry under `key` if the record holds it itself, never an inherited member. */
export function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}
