// The official OpenAI Node SDK against modelrunnerd.
// Run by tests/tests/sdk.rs with OPENAI_BASE_URL (the daemon's /v1) and MODEL set.
import assert from "node:assert/strict";
import OpenAI from "openai";

const model = process.env.MODEL;
const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: "not-needed", maxRetries: 0 });

const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
assert.ok(ids.some((i) => i.includes(model)), String(ids));

const r = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Once upon a time" }],
  max_tokens: 16,
  temperature: 0,
});
assert.equal(r.object, "chat.completion");
assert.ok(r.choices[0].message.content.length > 0);
assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
assert.ok(r.usage.completion_tokens > 0);

let text = "";
let usage = null;
let finish = null;
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "A cat" }],
  max_tokens: 12,
  logit_bias: { 2: -100 }, // sampled: without this any model may end early
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta.content ?? "";
    finish = c.finish_reason ?? finish;
  }
}
assert.ok(text.length > 0);
assert.equal(finish, "length");
assert.equal(usage.completion_tokens, 12);

const c = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
assert.equal(c.object, "text_completion");
assert.ok(c.choices[0].text.length > 0);

const e = await client.embeddings.create({ model, input: ["a dog", "a cat"] });
assert.equal(e.data.length, 2);
assert.ok(e.data[0].embedding.length > 0);

const schema = {
  type: "object",
  properties: { name: { type: "string", maxLength: 10 }, age: { type: "integer", minimum: 0, maximum: 20 } },
  required: ["name", "age"],
  additionalProperties: false,
};
const j = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Describe a dog" }],
  max_tokens: 400, // the grammar bounds the object; any model closes it well before
  seed: 2,
  response_format: { type: "json_schema", json_schema: { name: "dog", schema, strict: true } },
});
assert.equal(j.choices[0].finish_reason, "stop");
const obj = JSON.parse(j.choices[0].message.content);
assert.deepEqual(Object.keys(obj).sort(), ["age", "name"]);
assert.ok(Number.isInteger(obj.age) && obj.age >= 0 && obj.age <= 20);

await assert.rejects(
  client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
  (err) => err instanceof OpenAI.NotFoundError && err.code === "model_not_found",
);
await assert.rejects(
  client.chat.completions.create({ model, messages: [{ role: "user", content: "story ".repeat(5000) }] }),
  (err) => err instanceof OpenAI.BadRequestError && err.code === "context_length_exceeded",
);
console.log("node openai ok");
