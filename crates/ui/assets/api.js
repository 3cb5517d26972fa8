// The daemon's HTTP API, same origin only. Every request carries the API key when the
// page has one; a 401 asks for one.

import { apiKey } from "./settings.js";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};

/** Called with the error message whenever the daemon answers 401. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** The message of an error body in any of the daemon's dialects. */
function errorMessage(status, text) {
  try {
    const body = JSON.parse(text);
    const e = body.error ?? body;
    const message = typeof e === "string" ? e : e.message;
    if (message) return message;
  } catch {
    // not JSON: the text itself
  }
  return text.trim() || `HTTP ${status}`;
}

/** A request; resolves to the response when it succeeds, throws ApiError otherwise. */
export async function request(path, { method = "GET", body, signal, accept = "application/json" } = {}) {
  const headers = { Accept: accept };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) {
    const message = errorMessage(response.status, await response.text());
    if (response.status === 401) unauthorized(message);
    throw new ApiError(response.status, message);
  }
  return response;
}

/** A request whose answer is JSON. */
export async function json(path, options) {
  return (await request(path, options)).json();
}

/** The lines of a streamed body, as they arrive. */
export async function* lines(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let at;
    while ((at = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, at).replace(/\r$/, "");
      buffered = buffered.slice(at + 1);
    }
  }
  if (buffered) yield buffered;
}

/** The JSON payloads of a server-sent event stream, up to `[DONE]`. An `error` event
 *  (or a payload that is an error) throws. */
export async function* events(response) {
  let event = "message";
  let data = [];
  for await (const line of lines(response)) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    else if (line === "" && data.length) {
      const text = data.join("\n");
      data = [];
      if (text === "[DONE]") return;
      const payload = JSON.parse(text);
      if (event === "error" || payload.error) {
        throw new ApiError(500, errorMessage(500, text));
      }
      event = "message";
      yield payload;
    }
  }
}
