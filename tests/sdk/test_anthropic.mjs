// The official Anthropic TypeScript SDK against modelrunnerd: one streamed message.
// Run by tests/tests/sdk.rs with ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY and CLAUDE_MODEL
// (a Claude model name the daemon has as a tag of the stories model) set.
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";

const client = new Anthropic({
  baseURL: process.env.ANTHROPIC_BASE_URL,
  apiKey: process.env.ANTHROPIC_API_KEY,
  maxRetries: 0,
});
let text = "";
const stream = client.messages
  .stream({
    model: process.env.CLAUDE_MODEL,
    max_tokens: 16,
    temperature: 0,
    messages: [{ role: "user", content: "Once upon a time" }],
  })
  .on("text", (t) => {
    text += t;
  });
const final = await stream.finalMessage();
assert.equal(final.type, "message");
assert.equal(final.model, "claude-sonnet-4-5");
assert.ok(text.length > 0);
assert.equal(final.content[0].type, "text");
assert.equal(final.content[0].text, text);
assert.ok(["end_turn", "max_tokens"].includes(final.stop_reason), final.stop_reason);
assert.ok(final.usage.output_tokens > 0);
console.log("ok");
