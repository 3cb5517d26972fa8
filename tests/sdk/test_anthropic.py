"""The official Anthropic Python SDK against modelrunnerd's Messages API: create, the
stream helper's text accumulation and event order, stop sequences, thinking blocks, a
tool loop with tool_choice any, count_tokens against the usage of a real call, and the
SDK's own exception type for each failure class. Run by tests/tests/sdk.rs with
ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY, MODEL (stories260K with its own template) and
TOOLS_MODEL and THINKING_MODEL (the same weights with Qwen3's and QwQ's templates)
set."""

import json
import os

import anthropic

BASE = os.environ["ANTHROPIC_BASE_URL"]
KEY = os.environ["ANTHROPIC_API_KEY"]
MODEL = os.environ["MODEL"]
TOOLS_MODEL = os.environ["TOOLS_MODEL"]
THINKING_MODEL = os.environ["THINKING_MODEL"]
client = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
# Claude-Code-style clients send the key as a bearer token and use /anthropic paths.
bearer = anthropic.Anthropic(base_url=BASE + "/anthropic", auth_token=KEY, max_retries=0)
NO_THINK = {"type": "disabled"}
# This SDK no longer has sampling arguments; the API still takes them.
GREEDY = {"temperature": 0}

WEATHER = {
    "name": "get_weather",
    "description": "Get the weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}


def create_and_stop_sequences():
    ask = [{"role": "user", "content": "Once upon a time"}]
    m = client.messages.create(model=MODEL, max_tokens=24, extra_body=GREEDY, messages=ask)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_"), m
    assert m.content[0].type == "text" and m.content[0].text, m
    assert m.stop_reason in ("end_turn", "max_tokens"), m.stop_reason
    assert m.stop_sequence is None, m
    assert m.usage.output_tokens > 0 and m.usage.input_tokens > 0, m.usage
    assert m._request_id, "no request-id header"
    # Stop on a word the same greedy call wrote: the stop reason names it, the text
    # ends before it.
    text = m.content[0].text
    words = text.split()
    assert len(words) >= 3, text
    word = max(words[1:], key=len)
    s = bearer.messages.create(
        model=MODEL, max_tokens=24, extra_body=GREEDY, messages=ask, stop_sequences=[word]
    )
    assert s.stop_reason == "stop_sequence", s
    assert s.stop_sequence == word, s
    cut = s.content[0].text if s.content else ""
    assert text.startswith(cut) and word not in cut, (text, s)


def streaming():
    ask = [{"role": "user", "content": "A little dog"}]
    with client.messages.stream(model=MODEL, max_tokens=20, extra_body=GREEDY, messages=ask) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert len(pieces) > 1, pieces
    assert final.content[0].text == "".join(pieces), (final, pieces)
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0, final.usage
    assert final.stop_reason in ("end_turn", "max_tokens"), final
    # The raw events, in Anthropic's order.
    kinds = [
        e.type
        for e in client.messages.create(
            model=MODEL, max_tokens=8, messages=ask, stream=True, extra_body=GREEDY
        )
    ]
    assert kinds[0] == "message_start", kinds
    assert kinds[1] == "content_block_start", kinds
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds
    assert set(kinds[2:-3]) == {"content_block_delta"}, kinds


def thinking():
    # QwQ's template opens the thinking block; this tiny model never closes it.
    ask = [{"role": "user", "content": "Think about a cat"}]
    with client.messages.stream(
        model=THINKING_MODEL,
        max_tokens=16,
        messages=ask,
        thinking={"type": "enabled", "budget_tokens": 8},
    ) as s:
        deltas = [e.delta.thinking for e in s if e.type == "content_block_delta" and e.delta.type == "thinking_delta"]
        final = s.get_final_message()
    assert deltas, "no thinking deltas"
    first = final.content[0]
    assert first.type == "thinking" and first.thinking == "".join(deltas), final
    assert first.signature == "", first


def tool_loop():
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    m = client.messages.create(
        model=TOOLS_MODEL,
        max_tokens=200,
        messages=ask,
        tools=[WEATHER],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        thinking=NO_THINK,
    )
    assert m.stop_reason == "tool_use", m
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses, m.content
    call = uses[0]
    assert call.name == "get_weather" and call.id, call
    assert isinstance(call.input, dict) and set(call.input) == {"city", "unit"}, call.input
    assert len(call.input["city"]) <= 12 and call.input["unit"] in ("celsius", "fahrenheit"), call.input
    # The tool's answer goes back; the model answers in text.
    history = ask + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": "Sunny, 21"}]}
            ],
        },
    ]
    r = client.messages.create(
        model=TOOLS_MODEL,
        max_tokens=12,
        messages=history,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        thinking=NO_THINK,
    )
    assert r.stop_reason in ("end_turn", "max_tokens"), r
    assert all(b.type != "tool_use" for b in r.content), r.content
    # count_tokens counts what a generation reads: the same conversation's usage.
    counted = client.messages.count_tokens(
        model=TOOLS_MODEL, messages=history, tools=[WEATHER], tool_choice={"type": "none"}, thinking=NO_THINK
    )
    read = r.usage.input_tokens + (r.usage.cache_read_input_tokens or 0)
    assert counted.input_tokens == read, (counted, r.usage)
    fewer = client.messages.count_tokens(model=TOOLS_MODEL, messages=ask, thinking=NO_THINK)
    assert 0 < fewer.input_tokens < counted.input_tokens, (fewer, counted)


def structured_output():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 10}},
        "required": ["name"],
        "additionalProperties": False,
    }
    m = client.messages.create(
        model=MODEL,
        max_tokens=60,
        messages=[{"role": "user", "content": "A name"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    data = json.loads(m.content[0].text)
    assert set(data) == {"name"} and len(data["name"]) <= 10, data


def errors():
    ask = [{"role": "user", "content": "hi"}]
    try:
        client.messages.create(model="no-such-model", max_tokens=4, messages=ask)
        raise AssertionError("an unknown model was accepted")
    except anthropic.NotFoundError as e:
        assert e.body["type"] == "error" and e.body["error"]["type"] == "not_found_error", e.body
        assert "pull" in e.body["error"]["message"], e.body
    try:
        client.messages.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": [{"type": "video"}]}])
        raise AssertionError("an unknown block was accepted")
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error", e.body
        assert "messages[0].content[0].type" in e.body["error"]["message"], e.body
    try:
        client.messages.create(model=MODEL, max_tokens=0, messages=ask)
        raise AssertionError("max_tokens 0 was accepted")
    except anthropic.BadRequestError as e:
        assert "max_tokens" in e.body["error"]["message"], e.body
    try:
        anthropic.Anthropic(base_url=BASE, api_key="wrong", max_retries=0).messages.create(
            model=MODEL, max_tokens=4, messages=ask
        )
        raise AssertionError("a wrong key was accepted")
    except anthropic.AuthenticationError as e:
        assert e.body["error"]["type"] == "authentication_error", e.body
    # The daemon keeps serving.
    ok = client.messages.create(model=MODEL, max_tokens=4, messages=ask)
    assert ok.usage.output_tokens > 0, ok


create_and_stop_sequences()
streaming()
thinking()
tool_loop()
structured_output()
errors()
print("ok")
