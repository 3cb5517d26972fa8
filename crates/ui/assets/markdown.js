// Markdown for model output, built as DOM nodes: every piece of the text becomes a text
// node, so nothing the model writes is ever parsed as HTML. Covered: fenced code blocks
// (an unclosed fence while the answer streams is still code), headings, lists, quotes,
// rules, paragraphs, and inline code, bold, italics and links (http and https only).

import { el } from "./dom.js";

const FENCE = /^\s*(```|~~~)\s*([\w+#.-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;
const SAFE_LINK = /^https?:\/\//i;

/** The text as a fragment of safe nodes. */
export function render(text) {
  const out = document.createDocumentFragment();
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(FENCE);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(fence[1]) && FENCE.test(lines[i]))) {
        body.push(lines[i++]);
      }
      i++;
      out.append(codeBlock(body.join("\n"), fence[2]));
      continue;
    }
    if (line.trim() === "") { i++; continue; }
    const heading = line.match(HEADING);
    if (heading) {
      out.append(el(`h${Math.min(heading[1].length + 2, 6)}`, {}, inline(heading[2])));
      i++;
      continue;
    }
    if (RULE.test(line)) { out.append(el("hr")); i++; continue; }
    const list = [[BULLET, "ul"], [NUMBERED, "ol"], [QUOTE, "blockquote"]].find(([p]) => p.test(line));
    if (list) {
      const [pattern, tag] = list;
      const items = [];
      while (i < lines.length && pattern.test(lines[i])) items.push(lines[i++].match(pattern)[1]);
      out.append(tag === "blockquote"
        ? el("blockquote", {}, render(items.join("\n")))
        : el(tag, {}, items.map((item) => el("li", {}, inline(item)))));
      continue;
    }
    const p = el("p");
    let first = true;
    while (i < lines.length && lines[i].trim() !== "" && (first || !startsBlock(lines[i]))) {
      if (!first) p.append(el("br"));
      p.append(inline(lines[i++]));
      first = false;
    }
    out.append(p);
  }
  return out;
}

function startsBlock(line) {
  return [FENCE, HEADING, BULLET, NUMBERED, QUOTE, RULE].some((p) => p.test(line));
}

function codeBlock(code, language) {
  const copy = el("button", { class: "copy", type: "button" }, "Copy");
  copy.addEventListener("click", () => {
    navigator.clipboard?.writeText(code).then(() => { copy.textContent = "Copied"; }, () => {});
  });
  return el("pre", {}, copy, el("code", { "data-language": language || null }, code));
}

// Inline spans, earliest match first: code, bold, italics, links.
const SPANS = [
  [/`([^`]+)`/, (m) => el("code", {}, m[1])],
  [/\*\*([^*]+)\*\*|__([^_]+)__/, (m) => el("strong", {}, inline(m[1] ?? m[2]))],
  [/\*([^*\s][^*]*)\*|\b_([^_\s][^_]*)_\b/, (m) => el("em", {}, inline(m[1] ?? m[2]))],
  [/\[([^\]]+)\]\(([^)\s]+)\)/, (m) => SAFE_LINK.test(m[2])
    ? el("a", { href: m[2], rel: "noopener noreferrer nofollow", target: "_blank" }, m[1])
    : document.createTextNode(m[0])],
];

/** One line's inline markdown as a fragment. */
export function inline(text) {
  const out = document.createDocumentFragment();
  let rest = text;
  while (rest) {
    let best = null;
    for (const [pattern, make] of SPANS) {
      const m = rest.match(pattern);
      if (m && (!best || m.index < best.m.index)) best = { m, make };
    }
    if (!best) { out.append(rest); break; }
    if (best.m.index) out.append(rest.slice(0, best.m.index));
    out.append(best.make(best.m));
    rest = rest.slice(best.m.index + best.m[0].length);
  }
  return out;
}
