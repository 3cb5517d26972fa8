//! Server-sent events as OpenAI sends them: `data: {json}\n\n`, ending with
//! `data: [DONE]`, or with an error event (and no `[DONE]`) when generation fails.

use axum::body::Bytes;
use serde_json::Value;

use crate::ApiError;

/// One `data:` frame.
pub(crate) fn frame(v: &Value) -> Bytes {
    let mut s = String::with_capacity(128);
    s.push_str("data: ");
    s.push_str(&serde_json::to_string(v).expect("json serialises"));
    s.push_str("\n\n");
    Bytes::from(s)
}

/// One frame with an `event:` line, as Anthropic and OpenAI Responses send them: the
/// event name is the data's `type`.
pub(crate) fn named(v: &Value) -> Bytes {
    let name = v.get("type").and_then(Value::as_str).unwrap_or("message");
    let data = serde_json::to_string(v).expect("json serialises");
    let mut s = String::with_capacity(data.len() + name.len() + 16);
    s.push_str("event: ");
    s.push_str(name);
    s.push_str("\ndata: ");
    s.push_str(&data);
    s.push_str("\n\n");
    Bytes::from(s)
}

/// The last frames of a successful stream: the usage chunk when there is one, then
/// `data: [DONE]`.
pub(crate) fn last(usage: Option<Value>) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = usage.iter().map(frame).collect();
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// The frame that ends a failed stream; SDKs raise it as an API error.
pub(crate) fn error_frame(e: &ApiError) -> Bytes {
    frame(&super::error::body(e))
}

/// A chunk whose only varying part is one string (a token's text), rendered once around
/// a placeholder: each token then costs one string escape instead of building and
/// serialising a JSON tree (this path runs for every generated token).
pub(crate) struct Template {
    head: String,
    tail: String,
}

/// Stands in for the varying string while the template is rendered.
pub(crate) const SLOT: &str = "\u{1}modelrunner-slot\u{1}";

impl Template {
    /// `chunk` must contain [`SLOT`] as one string value.
    pub(crate) fn new(chunk: &Value) -> Template {
        let text = serde_json::to_string(chunk).expect("json serialises");
        let quoted = serde_json::to_string(SLOT).expect("json serialises");
        let at = text.find(&quoted).expect("the chunk holds the slot");
        Template {
            head: format!("data: {}", &text[..at]),
            tail: format!("{}\n\n", &text[at + quoted.len()..]),
        }
    }

    /// The frame with `text` in the slot.
    pub(crate) fn render(&self, text: &str) -> Bytes {
        let quoted = serde_json::to_string(text).expect("json serialises");
        let mut s = String::with_capacity(self.head.len() + quoted.len() + self.tail.len());
        s.push_str(&self.head);
        s.push_str(&quoted);
        s.push_str(&self.tail);
        Bytes::from(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_template_renders_like_the_tree() {
        let chunk = |t: &str| json!({"id": "x", "choices": [{"delta": {"content": t}, "finish_reason": null}]});
        let tpl = Template::new(&chunk(SLOT));
        for t in ["", "hi", "a \"quoted\"\nline", "é\u{1}"] {
            assert_eq!(tpl.render(t), frame(&chunk(t)));
        }
    }
}
