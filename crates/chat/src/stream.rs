//! A generation's output read as it is written: each piece of text gives the reasoning,
//! content and tool-call deltas it adds, in OpenAI's shape (a call's index, its id and
//! name once, its arguments in pieces), whatever the token boundaries are.

use crate::read::{Format, Parsed};

/// A tool call's delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDelta {
    /// Which call (0, 1, ...).
    pub index: usize,
    /// The id and the name, in the call's first delta only.
    pub head: Option<(String, String)>,
    /// More of the arguments' JSON text.
    pub arguments: String,
}

/// What a piece of output adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// More reasoning.
    pub reasoning: String,
    /// More answer text.
    pub content: String,
    /// More of the calls.
    pub calls: Vec<CallDelta>,
}

impl Delta {
    /// Whether it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.reasoning.is_empty() && self.content.is_empty() && self.calls.is_empty()
    }
}

/// The reader of one generation's output.
#[derive(Debug)]
pub struct OutputReader {
    format: Format,
    text: String,
    sent: Parsed,
    ids: Vec<String>,
    nine_char_ids: bool,
}

/// A call id: `call_` and 24 letters and digits, or 9 of them for templates that insist.
fn new_id(nine: bool) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let n = if nine { 9 } else { 24 };
    let s: String = (0..n)
        .map(|_| ALNUM[rand::random_range(0..ALNUM.len())] as char)
        .collect();
    if nine {
        s
    } else {
        format!("call_{s}")
    }
}

/// The part of `new` after `old`, when `new` extends it (it always does; a read that
/// would take text back gives nothing until it agrees again).
fn grown<'a>(old: &str, new: &'a str) -> Option<&'a str> {
    new.strip_prefix(old)
}

impl OutputReader {
    /// A reader for a request's format.
    pub fn new(format: Format) -> OutputReader {
        let nine_char_ids = format.family.nine_char_ids();
        OutputReader {
            format,
            text: String::new(),
            sent: Parsed::default(),
            ids: Vec::new(),
            nine_char_ids,
        }
    }

    /// Adds generated text; returns what it adds.
    pub fn push(&mut self, text: &str) -> Delta {
        self.text.push_str(text);
        let now = self.format.read(&self.text, true);
        self.delta(now)
    }

    /// The end of the output: what is left (held-back text is released).
    pub fn finish(&mut self) -> Delta {
        let now = self.format.read(&self.text, false);
        self.delta(now)
    }

    /// Whether the output has made a tool call.
    pub fn has_calls(&self) -> bool {
        !self.sent.calls.is_empty()
    }

    fn delta(&mut self, now: Parsed) -> Delta {
        let mut d = Delta::default();
        if let Some(r) = grown(&self.sent.reasoning, &now.reasoning) {
            d.reasoning = r.to_string();
            self.sent.reasoning = now.reasoning.clone();
        }
        if let Some(c) = grown(&self.sent.content, &now.content) {
            d.content = c.to_string();
            self.sent.content = now.content.clone();
        }
        for (i, call) in now.calls.into_iter().enumerate() {
            let known = self.sent.calls.len();
            match self.sent.calls.get_mut(i) {
                Some(old) => {
                    if old.name != call.name {
                        continue;
                    }
                    if let Some(a) = grown(&old.arguments, &call.arguments) {
                        if !a.is_empty() {
                            d.calls.push(CallDelta {
                                index: i,
                                head: None,
                                arguments: a.to_string(),
                            });
                        }
                        *old = call;
                    }
                }
                None if i == known => {
                    let id = call
                        .id
                        .clone()
                        .unwrap_or_else(|| new_id(self.nine_char_ids));
                    self.ids.push(id.clone());
                    d.calls.push(CallDelta {
                        index: i,
                        head: Some((id, call.name.clone())),
                        arguments: call.arguments.clone(),
                    });
                    self.sent.calls.push(call);
                }
                None => {}
            }
        }
        d
    }
}
