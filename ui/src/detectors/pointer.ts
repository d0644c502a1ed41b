// RFC 6901 JSON pointers over plain JSON: the expert form, the 422 errors and the draft all speak them.
import type { JsonObject, JsonValue } from "../api/types";

export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

export function getAt(root: JsonValue | undefined, tokens: string[]): JsonValue | undefined {
  let node: JsonValue | undefined = root;
  for (const t of tokens) {
    if (Array.isArray(node)) node = node[Number(t)];
    else if (node !== null && typeof node === "object") node = node[t];
    else return undefined;
  }
  return node;
}

/** Sets (or, with `undefined`, removes) a value in place, creating objects on the way. */
export function setAt(root: JsonObject, tokens: string[], value: JsonValue | undefined): void {
  let node: JsonValue = root;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i]!;
    const container: JsonObject | JsonValue[] = node as JsonObject | JsonValue[];
    let next: JsonValue | undefined = Array.isArray(container) ? container[Number(t)] : container[t];
    if (next === null || typeof next !== "object") {
      next = {};
      if (Array.isArray(container)) container[Number(t)] = next;
      else container[t] = next;
    }
    node = next;
  }
  const last = tokens[tokens.length - 1];
  if (last === undefined) return;
  if (Array.isArray(node)) {
    if (value === undefined) node.splice(Number(last), 1);
    else node[Number(last)] = value;
  } else if (node !== null && typeof node === "object") {
    if (value === undefined) delete node[last];
    else node[last] = value;
  }
}
