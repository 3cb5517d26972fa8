//! GPT-OSS's harmony format: the output is a run of messages, each with a channel
//! (`analysis` is reasoning, `final` the answer, `commentary` a preamble or, with a
//! recipient `to=functions.NAME`, a tool call whose body is the arguments).

use super::{hold_back, Call, Format, Parsed};

const MESSAGE: &str = "<|message|>";
const ENDS: [&str; 4] = ["<|end|>", "<|call|>", "<|return|>", "<|start|>"];

/// The channel and recipient of a message header.
fn header(h: &str) -> (String, Option<String>) {
    let channel = h
        .split("<|channel|>")
        .nth(1)
        .map(|c| {
            c.split(|ch: char| ch.is_whitespace() || ch == '<')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let to = h.split("to=").nth(1).map(|r| {
        let r = r
            .split(|ch: char| ch.is_whitespace() || ch == '<')
            .next()
            .unwrap_or("");
        r.strip_prefix("functions.").unwrap_or(r).to_string()
    });
    (channel, to)
}

pub(super) fn read(f: &Format, text: &str, partial: bool, out: &mut Parsed) {
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let Some(m) = rest.find(MESSAGE) else {
            // A header still being written; a final answer without one is plain text.
            if !rest.contains("<|channel|>") && !rest.trim_start().starts_with("<|") {
                out.content.push_str(if partial {
                    hold_back(rest, &["<|channel|>"])
                } else {
                    rest
                });
            }
            return;
        };
        let (channel, to) = header(&rest[..m]);
        let body_start = m + MESSAGE.len();
        let body = &rest[body_start..];
        let (end, next) = match ENDS
            .iter()
            .filter_map(|e| body.find(e).map(|i| (i, e)))
            .min()
        {
            Some((i, e)) => (
                i,
                body_start + i + if *e == "<|start|>" { 0 } else { e.len() },
            ),
            None => (body.len(), rest.len()),
        };
        let complete = end < body.len();
        let mut body = &body[..end];
        if !complete && partial {
            body = hold_back(body, &ENDS);
        }
        match (channel.as_str(), to) {
            (_, Some(name)) if f.calls => out.calls.push(Call {
                name,
                id: None,
                arguments: body.trim().to_string(),
                complete,
            }),
            ("analysis", _) => {
                if !out.reasoning.is_empty() && !body.is_empty() {
                    out.reasoning.push('\n');
                }
                out.reasoning.push_str(body.trim());
            }
            _ => out.content.push_str(body),
        }
        pos += next;
    }
}
