//! Chat templates from arbitrary text rendered over a fixed conversation: an error or a
//! bounded output (fuel and the output limit hold), never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelrunner_template::{ChatTemplate, Limits};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        fuel: 200_000,
        max_output: 1 << 20,
    };
    let Ok(t) = ChatTemplate::with_limits(source, limits) else {
        return;
    };
    let ctx = serde_json::json!({
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi <|im_end|> {{ x }}"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
            ]},
            {"role": "tool", "content": "42"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "add_generation_prompt": true,
        "bos_token": "<s>",
        "eos_token": "</s>"
    });
    if let Ok(out) = t.render(&ctx) {
        assert!(out.len() <= 1 << 20);
    }
});
