// One answer: the conversation goes to /v1/chat/completions as a stream; the text is
// drawn as it arrives, and the speed is measured from the first token to the last.

import { events, request } from "./api.js";
import { el } from "./dom.js";
import { render } from "./markdown.js";

/** The request body for `conversation` with the system prompt and sampling settings. */
export function body(conversation, system, sampling) {
  const messages = conversation.messages
    .filter((m) => !m.error && (m.role === "user" || m.role === "assistant"))
    .map((m) => ({ role: m.role, content: m.content }));
  if (system.trim()) messages.unshift({ role: "system", content: system });
  return {
    model: conversation.model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    ...sampling,
  };
}

/** A list item for a message, its text drawn as markdown (assistant) or plain (user). */
export function messageView(message) {
  const content = el("div", { class: "content" });
  const meta = el("div", { class: "meta" });
  const item = el("li", { class: `msg ${message.role}${message.error ? " error" : ""}` }, content, meta);
  draw(item, message);
  return item;
}

/** Redraws a message's list item. */
export function draw(item, message) {
  const [content, meta] = item.children;
  if (message.role === "assistant" && !message.error) {
    content.replaceChildren(render(message.content));
    if (message.reasoning) {
      // What a reasoning model thought, apart from its answer; open while it streams.
      const thinking = el("details", { class: "thinking", open: item.dataset.streaming === "true" },
        el("summary", {}, "Thinking"), el("div", {}, message.reasoning));
      content.prepend(thinking);
    }
  } else {
    content.textContent = message.content;
  }
  meta.textContent = describe(message.meta);
  meta.hidden = !meta.textContent;
  item.classList.toggle("error", Boolean(message.error));
}

function describe(meta) {
  if (!meta) return "";
  const parts = [];
  if (meta.tokens !== undefined) parts.push(`${meta.tokens} tokens`);
  if (meta.tokensPerSecond) parts.push(`${meta.tokensPerSecond.toFixed(1)} tokens/s`);
  if (meta.firstTokenMs !== undefined) parts.push(`first token ${Math.round(meta.firstTokenMs)} ms`);
  if (meta.finish) parts.push(meta.finish === "stop" ? "done" : meta.finish);
  return parts.join(" · ");
}

/** Streams the answer into `message`, calling `update` as it grows. Resolves when it ends,
 *  is stopped through `signal` (then `meta.finish` is "stopped"), or fails (`error`). */
export async function stream(requestBody, message, signal, update) {
  const started = performance.now();
  let first = null;
  let last = null;
  let pieces = 0;
  let usage = null;
  message.meta = {};
  try {
    const response = await request("/v1/chat/completions", { method: "POST", body: requestBody, signal });
    for await (const chunk of events(response)) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices || []) {
        const delta = choice.delta || {};
        const text = delta.content || "";
        const thought = delta.reasoning_content || "";
        if (text || thought) {
          last = performance.now();
          if (first === null) first = last;
          pieces++;
          message.content += text;
          if (thought) message.reasoning = (message.reasoning || "") + thought;
        }
        if (choice.finish_reason) message.meta.finish = choice.finish_reason;
      }
      update();
    }
  } catch (e) {
    if (signal.aborted) message.meta.finish = "stopped";
    else {
      message.error = true;
      message.content = message.content ? `${message.content}\n\n${e.message}` : e.message;
    }
  }
  const tokens = usage?.completion_tokens ?? pieces;
  message.meta.tokens = tokens;
  if (first !== null) {
    message.meta.firstTokenMs = first - started;
    // Tokens after the first, over the time they took.
    if (last > first && tokens > 1) message.meta.tokensPerSecond = ((tokens - 1) * 1000) / (last - first);
  }
  update();
}
