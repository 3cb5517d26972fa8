// The page: wires the model list, the conversation list, the settings and the composer.

import { onUnauthorized } from "./api.js";
import { body, draw, messageView, stream } from "./chat.js";
import * as conversations from "./conversations.js";
import { $, el, notice } from "./dom.js";
import { pull, refreshLoaded, refreshModels, shortName } from "./models.js";
import {
  apiKey, applyTheme, bindSettings, extraFields, load, nextTheme, sampling, save, setApiKey,
} from "./settings.js";

let current = null;
let running = null;

function showConversation(conversation) {
  current = conversation;
  conversations.setCurrent(conversation.id);
  $("messages").replaceChildren(...conversation.messages.map(messageView));
  if (conversation.model && [...$("model").options].some((o) => o.value === conversation.model)) {
    $("model").value = conversation.model;
  }
  drawConversations();
  scrollDown();
}

function drawConversations() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of conversations.all()) {
    const open = el("button", { class: "title", type: "button", onclick: () => { showConversation(c); closeSide(); } }, c.title);
    const remove = el("button", {
      type: "button", "aria-label": `Delete ${c.title}`,
      onclick: () => {
        conversations.remove(c.id);
        if (current && current.id === c.id) showConversation(conversations.create($("model").value));
        else drawConversations();
      },
    }, "×");
    list.append(el("li", { class: current && c.id === current.id ? "current" : "", "data-conversation": c.id },
      open, el("small", {}, shortName(c.model || "")), remove));
  }
}

function scrollDown() {
  const m = $("messages");
  m.scrollTop = m.scrollHeight;
}

function busy(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
}

async function send() {
  const text = $("prompt").value;
  if (!text.trim() || running) return;
  const model = $("model").value;
  if (!model) { notice("No model to talk to: pull one first."); return; }
  let extra;
  try {
    extra = extraFields();
  } catch (e) {
    notice(e.message);
    return;
  }
  notice("");
  current.model = model;
  current.messages.push({ role: "user", content: text });
  const answer = { role: "assistant", content: "" };
  const requestBody = body(current, $("system").value, { ...sampling(), ...extra });
  current.messages.push(answer);
  conversations.put(current);
  $("prompt").value = "";
  const list = $("messages");
  list.append(messageView(current.messages[current.messages.length - 2]));
  const item = messageView(answer);
  item.dataset.streaming = "true";
  list.append(item);
  scrollDown();
  const controller = new AbortController();
  running = controller;
  busy(true);
  let frame = 0;
  await stream(requestBody, answer, controller.signal, () => {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; draw(item, answer); scrollDown(); });
  });
  cancelAnimationFrame(frame);
  delete item.dataset.streaming;
  draw(item, answer);
  running = null;
  busy(false);
  conversations.put(current);
  drawConversations();
  refreshLoaded().catch(() => {});
}

function closeSide() {
  $("side").classList.remove("open");
}

function askForKey(reason) {
  $("key-reason").textContent = reason;
  $("key").value = apiKey();
  if (!$("key-dialog").open) $("key-dialog").showModal();
}

async function refreshAll() {
  try {
    await refreshModels();
    await refreshLoaded();
    notice("");
  } catch (e) {
    notice(e.status === 401 ? `The daemon refused the API key: ${e.message}` : `Cannot reach the daemon: ${e.message}`);
  }
}

function wire() {
  let theme = load("theme", "system");
  applyTheme(theme);
  $("theme").addEventListener("click", () => { theme = nextTheme(theme); save("theme", theme); applyTheme(theme); });
  bindSettings();
  $("toggle-settings").addEventListener("click", () => { $("settings").hidden = !$("settings").hidden; });
  $("toggle-side").addEventListener("click", () => $("side").classList.toggle("open"));
  $("refresh").addEventListener("click", refreshAll);
  $("new-chat").addEventListener("click", () => { showConversation(conversations.create($("model").value)); closeSide(); });
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $("stop").addEventListener("click", () => running && running.abort());
  $("pull").addEventListener("submit", (e) => {
    e.preventDefault();
    const ref = $("pull-ref").value.trim();
    const button = $("pull").querySelector("button[type=submit]");
    if (!ref || button.disabled) return;
    // One pull at a time from this page: the bars show one pull.
    button.disabled = true;
    pull(ref).then(() => refreshLoaded(), () => {}).finally(() => { button.disabled = false; });
  });
  $("key-button").addEventListener("click", () => askForKey("The key is sent as a bearer token to this daemon only."));
  $("key-form").addEventListener("submit", () => {
    setApiKey($("key").value.trim(), $("key-remember").checked);
    refreshAll();
  });
  $("key-clear").addEventListener("click", () => { setApiKey("", false); $("key").value = ""; $("key-dialog").close(); });
  onUnauthorized((message) => askForKey(`The daemon answered 401: ${message}. Enter its API key.`));
}

async function main() {
  wire();
  await refreshAll();
  const id = conversations.currentId();
  showConversation((id && conversations.get(id)) || conversations.create($("model").value));
  setInterval(() => { if (!document.hidden) refreshLoaded().catch(() => {}); }, 5000);
}

main();
