// A canonical text of a request, for joining only requests that are equal in every field: object
// keys sorted, fields whose value is undefined left out (as absent), Maps as sorted entries. A
// value with no faithful text (a function, a symbol, a bigint, a class instance, a cycle) gives
// `undefined`: the caller then does not join, rather than join requests it cannot tell apart.

const MAX_DEPTH = 32;

/** The canonical text of `value`, or `undefined` when it cannot be written faithfully. */
export function canonicalText(value: unknown): string | undefined {
  return write(value, 0);
}

function write(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : undefined;
  if (typeof value !== 'object' || depth > MAX_DEPTH) return undefined;
  if (Array.isArray(value)) return list(value, depth);
  // Not JSON (JSON never starts a value with a letter other than true/false/null), so neither
  // form can be confused with an object or array that happens to look like it.
  if (value instanceof Map) {
    const entries = [...value.entries()].map((entry) => list(entry, depth));
    return entries.includes(undefined) ? undefined : `Map[${entries.sort().join(',')}]`;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : `Date(${value.toISOString()})`;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return undefined;
  const fields: string[] = [];
  for (const key of Object.keys(value).sort()) {
    const field = (value as Record<string, unknown>)[key];
    if (field === undefined) continue;
    const text = write(field, depth + 1);
    if (text === undefined) return undefined;
    fields.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${fields.join(',')}}`;
}

function list(items: readonly unknown[], depth: number): string | undefined {
  const texts: string[] = [];
  for (const item of items) {
    const text = write(item, depth + 1);
    if (text === undefined) return undefined; // an undefined or unwritable item: no faithful text
    texts.push(text);
  }
  return `[${texts.join(',')}]`;
}
