"""The official OpenAI Python SDK's Responses API and the OpenAI Agents SDK's default
(Responses) model against modelrunnerd: create, the stream helper, incomplete answers,
function tools and their outputs, and a conversation continued with
previous_response_id across a daemon restart, with its input_items. Run by
tests/tests/sdk.rs twice: `first` before the restart (it writes what it made to
$STATE), `second` after it. MODEL is stories260K with its own template, TOOLS_MODEL
the same weights with Qwen3's."""

import asyncio
import json
import os
import sys
from typing import Literal

import openai
from openai import AsyncOpenAI, OpenAI

BASE = os.environ["OPENAI_BASE_URL"]
MODEL = os.environ["MODEL"]
TOOLS_MODEL = os.environ["TOOLS_MODEL"]
STATE = os.environ["STATE"]
client = OpenAI(base_url=BASE, api_key="unused", max_retries=0)
NAME = {
    "type": "json_schema",
    "name": "story",
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 8}},
        "required": ["name"],
        "additionalProperties": False,
    },
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
NO_THINK = {"effort": "none"}


def create_and_incomplete():
    r = client.responses.create(model=MODEL, input="Once upon a time", max_output_tokens=8)
    assert r.object == "response" and r.id.startswith("resp_"), r
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens", r
    assert r.output[0].type == "message" and r.output_text, r
    u = r.usage
    assert u.output_tokens == 8 and u.total_tokens == u.input_tokens + 8, u
    assert u.input_tokens_details.cached_tokens >= 0 and u.output_tokens_details.reasoning_tokens == 0, u
    # Raw events: numbered from 0 without gaps, created first, incomplete last.
    events = list(client.responses.create(model=MODEL, input="A dog", max_output_tokens=6, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events))), events
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"], kinds
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.incomplete"], kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].response.output[0].content[0].text == text, events[-1]


def stream_helper():
    with client.responses.stream(model=MODEL, input="A name", text={"format": NAME}, max_output_tokens=60) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert final.status == "completed", final
    assert final.output_text == "".join(deltas), (final.output_text, deltas)
    data = json.loads(final.output_text)
    assert set(data) == {"name"} and len(data["name"]) <= 8, data


def function_tools():
    r = client.responses.create(
        model=TOOLS_MODEL, input="What is the weather in Paris?", tools=[WEATHER],
        tool_choice="required", parallel_tool_calls=False, max_output_tokens=200, reasoning=NO_THINK,
    )
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", r.output
    args = json.loads(calls[0].arguments)
    assert set(args) == {"city"} and len(args["city"]) <= 12, args
    # The tool's output continues the stored conversation.
    r2 = client.responses.create(
        model=TOOLS_MODEL, previous_response_id=r.id, tools=[WEATHER], tool_choice="none",
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny"}],
        max_output_tokens=10, reasoning=NO_THINK,
    )
    assert r2.output[-1].type == "message" and r2.previous_response_id == r.id, r2
    items = client.responses.input_items.list(r2.id, order="asc")
    kinds = [i.type for i in items.data]
    assert kinds == ["message", "function_call", "function_call_output"], kinds


def agents_sdk():
    from agents import (Agent, ModelSettings, Runner, function_tool, set_default_openai_client,
                        set_tracing_disabled)
    from openai.types.shared import Reasoning

    set_tracing_disabled(True)
    set_default_openai_client(AsyncOpenAI(base_url=BASE, api_key="unused"), use_for_tracing=False)
    seen = []

    @function_tool
    def get_weather(city: Literal["Paris", "London"]) -> str:
        """Get the weather in a city."""
        seen.append(city)
        return f"21 degrees in {city}"

    # No model class named: the SDK's default, its Responses model.
    agent = Agent(
        name="weather", instructions="Answer with the weather.", tools=[get_weather],
        model=TOOLS_MODEL, tool_use_behavior="stop_on_first_tool",
        model_settings=ModelSettings(tool_choice="required", max_tokens=200, parallel_tool_calls=False,
                                     reasoning=Reasoning(effort="none")),
    )
    result = asyncio.run(Runner.run(agent, "What is the weather in Paris?"))
    assert len(seen) == 1, seen
    assert result.final_output == f"21 degrees in {seen[0]}", result.final_output
    rid = result.raw_responses[0].response_id
    assert rid.startswith("resp_") and client.responses.retrieve(rid).id == rid, rid


def first():
    r = client.responses.create(model=MODEL, input="Tom had a red ball.", instructions="Tell a story.",
                                max_output_tokens=6, metadata={"run": "first"})
    assert r.store is True and r.metadata == {"run": "first"}, r
    unstored = client.responses.create(model=MODEL, input="x", max_output_tokens=2, store=False)
    with open(STATE, "w") as f:
        json.dump({"id": r.id, "text": r.output_text, "unstored": unstored.id}, f)


def second():
    with open(STATE) as f:
        state = json.load(f)
    old = client.responses.retrieve(state["id"])
    assert old.output_text == state["text"] and old.instructions == "Tell a story.", old
    r = client.responses.create(model=MODEL, previous_response_id=state["id"], input="Then?", max_output_tokens=4)
    items = client.responses.input_items.list(r.id, order="asc")
    texts = [c.text for i in items.data if i.type == "message" for c in i.content]
    assert texts == ["Tom had a red ball.", state["text"], "Then?"], texts
    newest = client.responses.input_items.list(r.id, limit=1)
    assert newest.has_more and newest.data[0].content[0].text == "Then?", newest
    # The prompt holds the whole conversation: more input tokens than the first turn.
    assert r.usage.input_tokens > old.usage.input_tokens, (r.usage, old.usage)
    for gone in (state["unstored"], "resp_never"):
        try:
            client.responses.retrieve(gone)
            raise AssertionError(f"{gone} was found")
        except openai.NotFoundError:
            pass
    try:
        client.responses.create(model=MODEL, previous_response_id="resp_never", input="x")
        raise AssertionError("an unknown previous_response_id was accepted")
    except openai.NotFoundError as e:
        assert e.body["param"] == "previous_response_id", e.body
    client.responses.delete(r.id)
    try:
        client.responses.retrieve(r.id)
        raise AssertionError("a deleted response was found")
    except openai.NotFoundError:
        pass
    # The earlier one is untouched.
    assert client.responses.retrieve(state["id"]).output_text == state["text"]


if sys.argv[1] == "first":
    create_and_incomplete()
    stream_helper()
    function_tools()
    agents_sdk()
    first()
else:
    second()
print("ok")
