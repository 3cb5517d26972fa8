// The model list, what is loaded, and pulls with a progress bar per layer.

import { json, lines, request } from "./api.js";
import { $, bytes, el, notice } from "./dom.js";

/** A tag as people write it: without Docker Hub's host and `:latest`. */
export function shortName(tag) {
  return tag.replace(/^(docker\.io|index\.docker\.io)\//, "").replace(/:latest$/, "");
}

function contextOf(config) {
  if (config.context_size && config.context_size > 0) return config.context_size;
  const gguf = config.gguf || {};
  const arch = config.architecture || gguf["general.architecture"];
  const n = Number(gguf[`${arch}.context_length`]);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** Fills the table and the model picker; keeps the picked model when it is still there. */
export async function refreshModels() {
  const models = await json("/models");
  const body = $("models").tBodies[0];
  const pick = $("model");
  const before = pick.value;
  body.replaceChildren();
  pick.replaceChildren();
  for (const m of models) {
    const tag = m.tags[0] || m.id;
    const c = m.config || {};
    const ctx = contextOf(c);
    body.append(el("tr", { "data-model": tag },
      el("td", {}, shortName(tag)),
      el("td", {}, c.size || ""),
      el("td", {}, c.quantization || ""),
      el("td", {}, ctx ? ctx.toLocaleString("en") : "")));
    pick.append(el("option", { value: tag }, shortName(tag)));
  }
  if (!models.length) pick.append(el("option", { value: "" }, "no models: pull one"));
  if ([...pick.options].some((o) => o.value === before)) pick.value = before;
  return models;
}

/** Lists loaded models with their memory, keep-alive and an unload button. */
export async function refreshLoaded() {
  const runners = await json("/engines/ps");
  const list = $("loaded");
  list.replaceChildren();
  if (!runners.length) list.append(el("li", {}, el("small", {}, "nothing loaded")));
  for (const r of runners) {
    const memory = r.resident_memory ?? r.estimated_memory?.total;
    const state = r.loading ? "loading" : r.in_use ? `busy (${r.requests})` : "idle";
    const keep = r.keep_alive === "-1" ? "kept loaded" : `keep-alive ${r.keep_alive}`;
    const unload = el("button", { type: "button", onclick: () => unloadModel(r.model_name) }, "Unload");
    list.append(el("li", { "data-loaded": r.model_name },
      el("div", { class: "who" },
        el("span", { class: "name" }, shortName(r.model_name)),
        el("small", {}, [bytes(memory), state, keep].filter(Boolean).join(" · "))),
      unload));
  }
}

async function unloadModel(name) {
  try {
    await request("/engines/unload", { method: "POST", body: { models: [name] } });
  } catch (e) {
    notice(`Unload failed: ${e.message}`);
  }
  await refreshLoaded().catch(() => {});
}

/** Pulls `reference`, drawing one bar per layer and the whole; resolves when it is done. */
export async function pull(reference) {
  const status = $("pull-status");
  const layers = $("pull-layers");
  layers.replaceChildren();
  status.classList.remove("failed");
  const total = el("progress", { id: "pull-total", max: 1, value: 0 });
  status.replaceChildren(el("span", {}, `Pulling ${reference}…`), total);
  const bars = new Map();
  try {
    const response = await request("/models/create", { method: "POST", body: { from: reference } });
    let outcome = null;
    for await (const line of lines(response)) {
      if (!line.trim()) continue;
      const p = JSON.parse(line);
      if (p.type === "error") throw new Error(p.message);
      if (p.type === "success") { outcome = p.message; continue; }
      if (p.type === "warning") { notice(p.message); continue; }
      if (p.layer && p.layer.id) {
        let bar = bars.get(p.layer.id);
        if (!bar) {
          const progress = el("progress", { max: p.layer.size || 1, value: 0 });
          const label = el("span", {});
          bar = { progress, label, current: 0, size: p.layer.size };
          bars.set(p.layer.id, bar);
          layers.append(el("div", { class: "layer", "data-layer": p.layer.id }, label, progress));
        }
        bar.current = p.layer.current;
        bar.progress.value = p.layer.current;
        const pct = p.layer.size ? Math.floor((100 * p.layer.current) / p.layer.size) : 100;
        bar.label.textContent = `${p.layer.id.slice(7, 19)} ${bytes(p.layer.current)} / ${bytes(p.layer.size)} (${pct}%)`;
        const done = [...bars.values()].reduce((s, b) => s + b.current, 0);
        total.max = p.total || 1;
        total.value = Math.min(done, total.max);
      }
    }
    if (outcome === null) throw new Error("the pull ended without saying it succeeded");
    total.max = 1;
    total.value = 1;
    status.firstChild.textContent = `${reference}: ${outcome} (100%)`;
    await refreshModels();
  } catch (e) {
    status.firstChild.textContent = `Pull of ${reference} failed: ${e.message}`;
    status.classList.add("failed");
    throw e;
  }
}
