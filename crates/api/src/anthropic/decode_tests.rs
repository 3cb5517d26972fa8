use super::*;
use modelrunner_protocol::{Input, ToolChoice};

fn decode(v: Value) -> Result<Decoded, ApiError> {
    messages(&v, ReasoningFormat::Auto)
}

fn chat(d: &Decoded) -> &Chat {
    match &d.generation.choices[0].input {
        Input::Chat(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocks_become_template_messages() {
    let d = decode(json!({"model": "m", "max_tokens": 9, "system": [{"type": "text", "text": "be brief"}],
        "stop_sequences": ["END"], "top_k": 3,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "look it up", "signature": ""},
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "thanks"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}]}
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "disabled"},
        "output_config": {"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}}}))
    .unwrap();
    let c = chat(&d);
    assert_eq!(
        c.messages[0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(c.messages[2]["reasoning_content"], "look it up");
    assert_eq!(c.messages[2]["content"], "checking");
    assert_eq!(
        c.messages[2]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    // The tool result comes first in its turn, then the user's text.
    assert_eq!(
        c.messages[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"})
    );
    assert_eq!(c.messages[4], json!({"role": "user", "content": "thanks"}));
    assert_eq!(c.tool_choice, ToolChoice::Required);
    assert!(!c.parallel_tool_calls);
    assert_eq!(
        c.tools.as_ref().unwrap()[0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(c.template_kwargs["enable_thinking"], false);
    assert_eq!(c.template_kwargs["reasoning_effort"], "high");
    assert_eq!(
        d.generation.choices[0].options.json_schema,
        Some(json!({"type": "object"}))
    );
    let o = &d.generation.choices[0].options;
    assert_eq!(
        (o.max_tokens, o.stop.clone(), o.sampling.top_k),
        (Some(9), vec!["END".to_string()], 3)
    );
}

#[test]
fn bad_fields_name_their_param() {
    let user = json!([{"role": "user", "content": "x"}]);
    for (body, param) in [
        (json!({"model": "m", "messages": user}), "max_tokens"),
        (
            json!({"model": "m", "max_tokens": 0, "messages": user}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": -1, "messages": user}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": []}),
            "messages",
        ),
        (json!({"max_tokens": 5, "messages": user}), "model"),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "tools": [{"name": "f"}]}),
            "tools[0].input_schema",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "tools": [{"name": "a b", "input_schema": {}}]}),
            "tools[0].name",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "tools": [{"type": "web_search_20250305", "name": "w"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "tool_choice": {"type": "sometimes"}}),
            "tool_choice.type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "tool_choice": {"type": "any"}}),
            "tool_choice",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "thinking": {"type": "enabled", "budget_tokens": 5}}),
            "thinking.budget_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "system": [{"type": "image"}]}),
            "system[0].type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "metadata": "x"}),
            "metadata",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "output_config": {"effort": "huge"}}),
            "output_config.effort",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": user, "output_config": {"format": {"type": "yaml"}}}),
            "output_config.format",
        ),
    ] {
        let e = decode(body.clone()).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
}

#[test]
fn count_tokens_needs_no_max_tokens() {
    let (model, c) = count_tokens(
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ReasoningFormat::Auto,
    )
    .unwrap();
    assert_eq!(model, "m");
    assert_eq!(c.messages, vec![json!({"role": "user", "content": "hi"})]);
}
