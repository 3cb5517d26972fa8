"""Tool calls through clients no one here wrote: the OpenAI Python SDK (tools,
tool_choice, streaming accumulation with its own stream helper, a conversation that
continues with a tool result), the OpenAI Agents SDK running a function tool through a
chat-completions model, and LangChain's ChatOpenAI.bind_tools. The model is tiny; the
grammar makes its calls valid, which is what these clients check."""

import asyncio
import json
import os
from typing import Literal

from openai import AsyncOpenAI, OpenAI

BASE = os.environ["OPENAI_BASE_URL"]
MODEL = os.environ["MODEL"]
client = OpenAI(base_url=BASE, api_key="unused")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the time in a zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["CET", "UTC"]}},
            "required": ["zone"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
# This tiny model would think without end; real thinking models are told the same way.
NO_THINK = {"chat_template_kwargs": {"enable_thinking": False}}


def check_weather(args):
    a = json.loads(args)
    assert set(a) == {"city", "unit"}, a
    assert isinstance(a["city"], str) and len(a["city"]) <= 12, a
    assert a["unit"] in ("celsius", "fahrenheit"), a
    return a


def required_and_named():
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
        parallel_tool_calls=False, max_tokens=200, seed=1, extra_body=NO_THINK,
    )
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    assert len(c.message.tool_calls) == 1, c.message
    call = c.message.tool_calls[0]
    assert call.type == "function" and call.id, call
    if call.function.name == "get_weather":
        check_weather(call.function.arguments)
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200, seed=2, extra_body=NO_THINK, parallel_tool_calls=False,
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather", call
    return check_weather(call.function.arguments), call.id


def none_gives_no_calls():
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none", max_tokens=20,
        extra_body=NO_THINK,
    )
    assert not r.choices[0].message.tool_calls, r.choices[0].message
    assert r.choices[0].finish_reason in ("stop", "length")


def streamed_with_the_sdk_helper():
    with client.chat.completions.stream(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required",
        max_tokens=200, seed=3, extra_body=NO_THINK, parallel_tool_calls=False,
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    c = final.choices[0]
    assert c.finish_reason == "tool_calls", c
    check_weather(c.message.tool_calls[0].function.arguments)
    # The same by hand: the first delta of a call has its id and name, then arguments.
    pieces, name = [], None
    for chunk in client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required",
        max_tokens=200, seed=3, stream=True, extra_body=NO_THINK, parallel_tool_calls=False,
    ):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        assert not (d.content or "").count("<tool_call>"), d
        for tc in d.tool_calls or []:
            assert tc.index == 0
            if tc.function.name:
                assert name is None and tc.id, tc
                name = tc.function.name
            pieces.append(tc.function.arguments or "")
    assert name == "get_weather", name
    check_weather("".join(pieces))


def conversation_continues(args, call_id):
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call_id, "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(args)}}]},
        {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 21}'},
    ]
    r = client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], max_tokens=16, seed=4,
        extra_body=NO_THINK,
    )
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls"), r


def agents_sdk():
    from agents import (Agent, ModelSettings, OpenAIChatCompletionsModel, Runner,
                        function_tool, set_tracing_disabled)

    set_tracing_disabled(True)
    seen = []

    @function_tool
    def get_weather(city: Literal["Paris", "London"]) -> str:
        """Get the weather in a city."""
        seen.append(city)
        return f"21 degrees in {city}"

    model = OpenAIChatCompletionsModel(
        model=MODEL, openai_client=AsyncOpenAI(base_url=BASE, api_key="unused"))
    agent = Agent(
        name="weather", instructions="Answer with the weather.", tools=[get_weather],
        model=model, tool_use_behavior="stop_on_first_tool",
        model_settings=ModelSettings(tool_choice="required", max_tokens=200,
                                     parallel_tool_calls=False, extra_body=NO_THINK),
    )
    result = asyncio.run(Runner.run(agent, "What is the weather in Paris?"))
    assert len(seen) == 1, seen
    assert result.final_output == f"21 degrees in {seen[0]}", result.final_output


def langchain():
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_time(zone: Literal["CET", "UTC"]) -> str:
        """Get the time in a zone (CET or UTC)."""
        return "12:00"

    llm = ChatOpenAI(base_url=BASE, api_key="unused", model=MODEL, max_tokens=120,
                     extra_body=NO_THINK)
    bound = llm.bind_tools([get_time], tool_choice="get_time", parallel_tool_calls=False)
    msg = bound.invoke("What time is it in Paris?")
    assert msg.tool_calls, msg
    call = msg.tool_calls[0]
    assert call["name"] == "get_time" and call["args"].get("zone") in ("CET", "UTC"), call
    assert call["id"], call


args, call_id = required_and_named()
none_gives_no_calls()
streamed_with_the_sdk_helper()
conversation_continues(args, call_id)
agents_sdk()
langchain()
print("ok")
