// What the page remembers: the API key (for this tab, or on this device when asked),
// the theme, the system prompt and the sampling settings.

const PREFIX = "modelrunner.";
const KEY = PREFIX + "api-key";

/** The API key, from this tab's storage or the device's. */
export function apiKey() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
}

/** Keeps the key for this tab, or on this device when `remember` is set; empty forgets it. */
export function setApiKey(key, remember) {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  if (!key) return;
  (remember ? localStorage : sessionStorage).setItem(KEY, key);
}

export function load(name, fallback) {
  try {
    const v = localStorage.getItem(PREFIX + name);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

export function save(name, value) {
  localStorage.setItem(PREFIX + name, JSON.stringify(value));
}

/** `light`, `dark`, or `system`. */
export function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const button = document.getElementById("theme");
  if (button) button.textContent = `Theme: ${{ light: "light", dark: "dark" }[theme] || "system"}`;
}

export function nextTheme(theme) {
  return { system: "dark", dark: "light", light: "system" }[theme] || "dark";
}

const NUMBERS = ["temperature", "top_p", "max_tokens", "seed"];

/** The settings form's fields that are set, as request fields. */
export function sampling() {
  const out = {};
  for (const name of NUMBERS) {
    const raw = document.getElementById(name).value.trim();
    if (raw === "") continue;
    const n = Number(raw);
    if (Number.isFinite(n)) out[name] = name === "max_tokens" || name === "seed" ? Math.trunc(n) : n;
  }
  return out;
}

/** The extra request fields: an object, or an error naming what is wrong. */
export function extraFields() {
  const raw = document.getElementById("extra").value.trim();
  if (!raw) return {};
  let value;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw new Error(`Extra request fields are not JSON: ${e.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error("Extra request fields must be a JSON object");
  }
  return value;
}

/** Fills the settings form from storage and saves it on every change. */
export function bindSettings() {
  const stored = load("settings", {});
  for (const name of [...NUMBERS, "system", "extra"]) {
    const field = document.getElementById(name);
    if (stored[name] !== undefined) field.value = stored[name];
    field.addEventListener("input", () => {
      const all = load("settings", {});
      all[name] = field.value;
      save("settings", all);
    });
  }
}
