"""The official OpenAI Python SDK against modelrunnerd.

Run by tests/tests/sdk.rs with OPENAI_BASE_URL (the daemon's /v1), MODEL and FIM_MODEL
(a tiny llama with fill-in-the-middle tokens) set.
Exits non-zero, with the failing assertion, when anything is off.
"""

import json
import os

import openai
from openai import OpenAI

base = os.environ["OPENAI_BASE_URL"]
model = os.environ["MODEL"]
client = OpenAI(base_url=base, api_key="not-needed", max_retries=0)

ids = [m.id for m in client.models.list()]
assert any(model in i for i in ids), ids

r = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Once upon a time"}],
    max_tokens=16,
    temperature=0,
)
assert r.object == "chat.completion", r
assert r.choices[0].message.role == "assistant"
assert r.choices[0].message.content, r
assert r.choices[0].finish_reason in ("stop", "length"), r
assert r.usage.completion_tokens > 0 and r.usage.total_tokens > r.usage.prompt_tokens, r.usage

text, usage, finish = "", None, None
for chunk in client.chat.completions.create(
    model=model,
    messages=[{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "A cat"}],
    max_tokens=12,
    logit_bias={"2": -100},  # sampled: without this any model may end early
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        text += c.delta.content or ""
        finish = c.finish_reason or finish
assert text and finish == "length", (text, finish)
assert usage is not None and usage.completion_tokens == 12, usage

c = client.completions.create(model=model, prompt="Once upon a time", max_tokens=8, temperature=0)
assert c.object == "text_completion" and c.choices[0].text, c

e = client.embeddings.create(model=model, input=["a dog", "a cat"], encoding_format="float")
assert len(e.data) == 2 and len(e.data[0].embedding) > 0, e
e64 = client.embeddings.create(model=model, input="a dog")  # the SDK asks for base64
assert abs(e64.data[0].embedding[0] - e.data[0].embedding[0]) < 1e-6

schema = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 10}, "happy": {"type": "boolean"}},
    "required": ["name", "happy"],
    "additionalProperties": False,
}
r = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Describe a dog"}],
    max_tokens=400,  # the grammar bounds the object; any model closes it well before
    seed=1,
    response_format={"type": "json_schema", "json_schema": {"name": "dog", "schema": schema, "strict": True}},
)
assert r.choices[0].finish_reason == "stop", r
obj = json.loads(r.choices[0].message.content)
assert set(obj) == {"name", "happy"} and isinstance(obj["name"], str) and isinstance(obj["happy"], bool), obj

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError as err:
    assert err.status_code == 404 and err.code == "model_not_found", err

try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "story " * 5000}])
    raise AssertionError("an over-long prompt must fail")
except openai.BadRequestError as err:
    assert err.code == "context_length_exceeded", err

try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], temperature=5)
    raise AssertionError("a bad temperature must fail")
except openai.BadRequestError as err:
    assert err.param == "temperature", err

# n choices, each with a seed of its own; the same seed gives the same choices again.
ask = [{"role": "user", "content": "Once upon a time"}]
many = client.chat.completions.create(model=model, messages=ask, n=3, seed=5, temperature=1, max_tokens=12)
assert [c.index for c in many.choices] == [0, 1, 2], many.choices
again = client.chat.completions.create(model=model, messages=ask, n=3, seed=5, temperature=1, max_tokens=12)
assert [c.message.content for c in many.choices] == [c.message.content for c in again.choices]
assert len({c.message.content for c in many.choices}) > 1, "distinct seeds, distinct choices"
streamed = {}
for chunk in client.chat.completions.create(model=model, messages=ask, n=3, seed=5, temperature=1, max_tokens=12, stream=True):
    for c in chunk.choices:
        streamed[c.index] = streamed.get(c.index, "") + (c.delta.content or "")
assert [streamed[i] for i in range(3)] == [c.message.content for c in many.choices], streamed
texts = client.completions.create(model=model, prompt=["Once", "Lily"], n=2, max_tokens=4)
assert [c.index for c in texts.choices] == [0, 1, 2, 3], texts.choices

# Log-probabilities on both routes, streamed and not.
lp = client.chat.completions.create(model=model, messages=ask, logprobs=True, top_logprobs=3, max_tokens=5, temperature=0)
tokens = lp.choices[0].logprobs.content
assert len(tokens) == 5 and all(len(t.top_logprobs) == 3 for t in tokens), tokens
assert "".join(t.token for t in tokens) == lp.choices[0].message.content
got = []
for chunk in client.chat.completions.create(model=model, messages=ask, logprobs=True, top_logprobs=2, max_tokens=5, temperature=0, stream=True):
    for c in chunk.choices:
        if c.logprobs and c.logprobs.content:
            got.extend(t.token for t in c.logprobs.content)
assert "".join(got) == lp.choices[0].message.content, got
c = client.completions.create(model=model, prompt="Once upon a time", logprobs=2, max_tokens=5, temperature=0)
assert len(c.choices[0].logprobs.tokens) == 5 and len(c.choices[0].logprobs.top_logprobs[0]) == 2

# Fill in the middle with a model that has FIM tokens.
fim = client.completions.create(model=os.environ["FIM_MODEL"], prompt="def add(a, b", suffix="    return a + b", max_tokens=4)
assert fim.usage.prompt_tokens > 4 and fim.choices[0].text is not None, fim
try:
    client.completions.create(model=model, prompt="a", suffix="b", max_tokens=1)
    raise AssertionError("a model without FIM tokens must refuse suffix")
except openai.BadRequestError as err:
    assert err.param == "suffix", err

print("python openai", openai.__version__, "ok")
