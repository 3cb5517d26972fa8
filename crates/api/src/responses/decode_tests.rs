use super::*;
use crate::responses::stored::{Limits, Record};
use modelrunner_protocol::{Input, ToolChoice};

fn stored() -> Responses {
    let r = Responses::open(None, Limits::default());
    r.put(Record {
        response: json!({"id": "resp_prev", "status": "completed", "output": [
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}", "status": "completed"}]}),
        history: vec![json!({"type": "message", "id": "msg_0", "role": "user", "content": "first"})],
        created: crate::pipeline::now_secs(),
    });
    r
}

fn chat(d: &Decoded) -> &Chat {
    match &d.generation.choices[0].input {
        Input::Chat(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stored_conversation_continues_with_the_new_input() {
    let s = stored();
    let d = create(
        &json!({"model": "m", "previous_response_id": "resp_prev", "instructions": "be brief",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "42"},
                      {"role": "user", "content": "and?"}],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"}, "max_output_tokens": 7,
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
            "reasoning": {"effort": "max"}}),
        &s,
        ReasoningFormat::Auto,
    )
    .unwrap();
    let c = chat(&d);
    assert_eq!(
        c.messages[0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(c.messages[1], json!({"role": "user", "content": "first"}));
    assert_eq!(c.messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        c.messages[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "42"})
    );
    assert_eq!(c.messages[4], json!({"role": "user", "content": "and?"}));
    assert_eq!(c.tool_choice, ToolChoice::Function { name: "f".into() });
    assert_eq!(c.template_kwargs["reasoning_effort"], "high");
    let o = &d.generation.choices[0].options;
    assert_eq!(o.max_tokens, Some(7));
    assert_eq!(o.json_schema, Some(json!({"type": "object"})));
    // The history: the earlier input, the earlier output, this input, all with ids.
    assert_eq!(d.history.len(), 4);
    assert!(
        d.history.iter().all(|i| i["id"].is_string()),
        "{:?}",
        d.history
    );
    assert_eq!(d.history[3]["type"], "message");
    assert_eq!(d.echo["previous_response_id"], "resp_prev");
    assert_eq!(d.echo["reasoning"]["effort"], "max");
}

#[test]
fn bad_fields_name_their_param() {
    let s = stored();
    for (body, param) in [
        (json!({"model": "m"}), "input"),
        (json!({"model": "m", "input": 3}), "input"),
        (
            json!({"model": "m", "input": "x", "previous_response_id": "resp_none"}),
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
            "input[0].type",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
            "input[0].content[0]",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "a b"}]}),
            "tools[0].name",
        ),
        (
            json!({"model": "m", "input": "x", "tool_choice": {"type": "allowed_tools"}}),
            "tool_choice",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}),
            "text.format.type",
        ),
        (
            json!({"model": "m", "input": "x", "reasoning": {"effort": "huge"}}),
            "reasoning.effort",
        ),
        (
            json!({"model": "m", "input": "x", "truncation": "auto"}),
            "truncation",
        ),
        (
            json!({"model": "m", "input": "x", "background": true, "stream": true}),
            "background",
        ),
        (
            json!({"model": "m", "input": "x", "max_output_tokens": 0}),
            "max_output_tokens",
        ),
        (
            json!({"model": "m", "input": "x", "conversation": "c"}),
            "conversation",
        ),
    ] {
        let e = match create(&body, &s, ReasoningFormat::Auto) {
            Ok(_) => panic!("{body} was accepted"),
            Err(e) => e,
        };
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
}

#[test]
fn an_oversized_conversation_is_refused_before_it_runs() {
    let s = Responses::open(
        None,
        Limits {
            max_bytes: 200,
            ..Limits::default()
        },
    );
    let body = json!({"model": "m", "input": "x".repeat(300)});
    let e = match create(&body, &s, ReasoningFormat::Auto) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    assert_eq!(e.param.as_deref(), Some("input"));
    assert!(e.message.contains("store: false"), "{}", e.message);
    let mut unstored = body.clone();
    unstored["store"] = json!(false);
    assert!(create(&unstored, &s, ReasoningFormat::Auto).is_ok());
}
