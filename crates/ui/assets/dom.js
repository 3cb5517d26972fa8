// Small DOM helpers. Text always goes in as text nodes: nothing here parses HTML.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element with attributes (`class`, `on*` handlers, others as attributes) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Bytes as B, KiB, MiB, GiB. */
export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A banner across the page; empty text hides it. */
export function notice(text) {
  const n = $("notice");
  n.textContent = text || "";
  n.hidden = !text;
}
