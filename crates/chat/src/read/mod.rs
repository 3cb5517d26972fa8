//! Reading a model's output into reasoning, content and tool calls, for a family and a
//! request. [`Format::read`] takes the whole output so far; with `partial` it holds back
//! what could still turn out to be markup (the start of a marker, white space before a
//! call), so that reading a longer output only ever extends what was read before.

mod calls;
mod harmony;

use std::collections::HashMap;

use crate::family::Family;
use crate::json::{entries, string_so_far};
use crate::syntax::{CallSyntax, IdKind, Keys, ReasoningTags};

/// A tool call read from the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function.
    pub name: String,
    /// The id the model wrote, if the format has one.
    pub id: Option<String>,
    /// The arguments as JSON text (so far, while `complete` is false).
    pub arguments: String,
    /// Whether the call's text is complete.
    pub complete: bool,
}

/// What the output says so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The reasoning, without its tags.
    pub reasoning: String,
    /// The answer's text.
    pub content: String,
    /// The tool calls.
    pub calls: Vec<Call>,
}

/// How to read one request's output.
#[derive(Debug, Clone)]
pub struct Format {
    /// The template's family.
    pub family: Family,
    /// Its reasoning tags, when reasoning is split off.
    pub reasoning: Option<ReasoningTags>,
    /// The prompt ends inside the reasoning (the template opened it).
    pub forced_open: bool,
    /// Tool calls are read (tools were given and `tool_choice` is not `none`).
    pub calls: bool,
    /// Each tool's parameter types (`"string"`, `"integer"`, ...), for formats that
    /// write parameters as text.
    pub param_types: HashMap<String, HashMap<String, String>>,
}

/// `s` without a trailing part that could be the start of one of `markers`.
pub(crate) fn hold_back<'a>(s: &'a str, markers: &[&str]) -> &'a str {
    let mut keep = s.len();
    for m in markers {
        let m = m.trim();
        for (i, _) in m.char_indices().skip(1) {
            if s.ends_with(&m[..i]) {
                keep = keep.min(s.len() - i);
            }
        }
    }
    &s[..keep]
}

impl Format {
    /// The format of a family with the template's reasoning tags; calls are off and
    /// nothing is forced open until the request says so.
    pub fn for_family(family: Family, source: &str) -> Format {
        Format {
            family,
            reasoning: family.reasoning(source),
            forced_open: false,
            calls: false,
            param_types: HashMap::new(),
        }
    }

    /// Reads the output so far.
    pub fn read(&self, text: &str, partial: bool) -> Parsed {
        let mut out = Parsed::default();
        if self.family == Family::GptOss {
            harmony::read(self, text, partial, &mut out);
            return out;
        }
        let rest = self.split_reasoning(text, partial, &mut out);
        match (self.calls, self.family.syntax()) {
            (true, Some(syn)) => self.read_calls(&syn, rest, partial, &mut out),
            (true, None) => read_generic(rest, &mut out),
            (false, _) => out.content = rest.to_string(),
        }
        let markers = self.family.content_markers();
        if !markers.is_empty() {
            for m in markers {
                out.content = out.content.replace(m, "");
            }
            if partial {
                out.content = hold_back(&out.content, markers).to_string();
            }
        }
        // Trailing white space is held back while the output goes on (it may end the
        // text, or stand before a call) and dropped at the end; after reasoning, the
        // white space that separates it goes too.
        let content = if out.reasoning.is_empty() {
            out.content.trim_end()
        } else {
            out.content.trim()
        };
        out.content = content.to_string();
        out
    }

    /// Moves the reasoning into `out`; returns the text after it.
    fn split_reasoning<'a>(&self, text: &'a str, partial: bool, out: &mut Parsed) -> &'a str {
        let Some(tags) = self.reasoning else {
            return text;
        };
        let start = if self.forced_open {
            0
        } else {
            let t = text.trim_start();
            if let Some(after) = t.strip_prefix(tags.open) {
                text.len() - after.len()
            } else if partial && !t.is_empty() && tags.open.starts_with(t)
                || partial && t.is_empty()
            {
                return "";
            } else {
                return text;
            }
        };
        let body = &text[start..];
        match body.find(tags.close) {
            Some(end) => {
                out.reasoning = body[..end].trim().to_string();
                &body[end + tags.close.len()..]
            }
            None => {
                let r = if partial {
                    hold_back(body, &[tags.close])
                } else {
                    body
                };
                out.reasoning = r.trim().to_string();
                ""
            }
        }
    }

    fn read_calls(&self, syn: &CallSyntax, s: &str, partial: bool, out: &mut Parsed) {
        if let (Some(all), true) = (syn.content_recipient, syn.at_start) {
            // Functionary v3.2: `all\n` starts plain text, up to the next recipient.
            let t = s.trim_start();
            if let Some(rest) = t.strip_prefix(all).filter(|r| r.starts_with('\n')) {
                let rest = &rest[1..];
                let (text, calls_at) = match rest.find(syn.between) {
                    Some(at) => (&rest[..at], Some(at + syn.between.len())),
                    None if partial => (hold_back(rest, &[syn.between]), None),
                    None => (rest, None),
                };
                out.content = text.to_string();
                if let Some(at) = calls_at {
                    let offset = s.len() - rest.len() + at;
                    let after = CallSyntax {
                        at_start: false,
                        ..*syn
                    };
                    self.calls_at(&after, s, offset, &mut out.calls);
                }
                return;
            }
            if partial && all.starts_with(t) {
                return;
            }
        }
        if syn.at_start {
            // Llama 3.1 may write its call after `<|python_tag|>`.
            let t = s.trim_start();
            let t = t.strip_prefix("<|python_tag|>").unwrap_or(t);
            let mut found = Vec::new();
            match self.calls_at(syn, s, s.len() - t.len(), &mut found) {
                calls::Step::No => out.content = s.to_string(),
                _ => out.calls = found,
            }
            return;
        }
        let marker = syn
            .start_marker()
            .expect("a syntax read past the start has a marker");
        let Some(at) = s.find(marker) else {
            out.content = if partial { hold_back(s, &[marker]) } else { s }.to_string();
            return;
        };
        let mut found = Vec::new();
        match self.calls_at(syn, s, at, &mut found) {
            // A marker with no call after it was text after all.
            calls::Step::No => out.content = s.to_string(),
            _ => {
                out.content = s[..at].to_string();
                out.calls = found;
            }
        }
    }
}

/// The generic answer: `{"tool_call": {...}}`, `{"tool_calls": [...]}` or
/// `{"response": "..."}`.
fn read_generic(s: &str, out: &mut Parsed) {
    let b = s.as_bytes();
    let start = s.len() - s.trim_start().len();
    if start == s.len() {
        return;
    }
    if b[start] != b'{' {
        out.content = s.to_string();
        return;
    }
    let (items, _) = entries(b, start);
    let Some(first) = items.first() else {
        return;
    };
    let keys = Keys {
        name: "name",
        args: "arguments",
        id: None,
        id_kind: IdKind::Any,
    };
    match first.key.as_str() {
        "response" => out.content = string_so_far(s, first.start).0,
        "tool_call" => out.calls.extend(calls::object_call(s, first.start, keys).0),
        "tool_calls" => {
            for item in entries(b, first.start).0 {
                let (call, complete) = calls::object_call(s, item.start, keys);
                out.calls.extend(call);
                if !complete {
                    break;
                }
            }
        }
        _ => {}
    }
}
