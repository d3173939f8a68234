// A line diff of two JSON values (pretty-printed, keys sorted so that key
// order never shows up as a change), by longest common subsequence.

import { h } from "./dom.js";

const MAX_LINES = 2000;

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

const lines = (value) => JSON.stringify(sorted(value), null, 2).split("\n");

/// [["=", line] | ["-", line] | ["+", line]] turning `a` into `b`.
export function diffLines(a, b) {
  const n = a.length;
  const m = b.length;
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[i] === b[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push(["=", a[i]]);
      i++;
      j++;
    } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) out.push(["-", a[i++]]);
    else out.push(["+", b[j++]]);
  }
  while (i < n) out.push(["-", a[i++]]);
  while (j < m) out.push(["+", b[j++]]);
  return out;
}

/// The diff of two values as a <pre>, removed lines marked "-", added "+".
export function jsonDiff(before, after) {
  const a = lines(before);
  const b = lines(after);
  if (a.length > MAX_LINES || b.length > MAX_LINES) {
    return h("p", { class: "muted" }, `These versions are too large to compare here (over ${MAX_LINES} lines).`);
  }
  const ops = diffLines(a, b);
  if (ops.every(([op]) => op === "=")) return h("p", { class: "muted" }, "No difference.");
  const label = { "=": "unchanged", "-": "removed", "+": "added" };
  return h(
    "pre",
    { class: "diff", "aria-label": "Differences, removed lines marked minus, added lines marked plus" },
    ops.map(([op, text]) => h("span", { class: label[op] }, `${op === "=" ? " " : op} ${text}\n`)),
  );
}
