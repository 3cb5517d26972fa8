// Conversations, kept in this browser's local storage: nothing is stored by the daemon.

import { load, save } from "./settings.js";

const LIST = "conversations";
const CURRENT = "current-conversation";

/** Every conversation, the most recent first. */
export function all() {
  const list = load(LIST, []);
  return Array.isArray(list) ? list.sort((a, b) => b.updated - a.updated) : [];
}

export function get(id) {
  return all().find((c) => c.id === id);
}

/** A new, empty conversation (not stored until it has a message). */
export function create(model) {
  const id = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return { id, title: "New conversation", model, messages: [], updated: Date.now() };
}

/** Stores `conversation`, titled after its first message. */
export function put(conversation) {
  const first = conversation.messages.find((m) => m.role === "user");
  if (first) conversation.title = first.content.slice(0, 60);
  conversation.updated = Date.now();
  const list = all().filter((c) => c.id !== conversation.id);
  list.push(conversation);
  try {
    save(LIST, list);
  } catch (e) {
    // The browser's quota: drop the oldest conversations until it fits.
    while (list.length > 1) {
      list.sort((a, b) => a.updated - b.updated).shift();
      try { save(LIST, list); return; } catch { /* keep dropping */ }
    }
    throw e;
  }
}

export function remove(id) {
  save(LIST, all().filter((c) => c.id !== id));
}

export function currentId() {
  return load(CURRENT, null);
}

export function setCurrent(id) {
  save(CURRENT, id);
}
