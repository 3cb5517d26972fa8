//! Reading calls written in a [`CallSyntax`], from output that may stop anywhere. What a
//! read of a longer text returns always extends what a read of its prefix returned.

use serde_json::Value;

use super::{Call, Format};
use crate::json::{entries, value_end, Entry, Extent};
use crate::syntax::{CallSyntax, Keys, Params, Piece};

/// How a piece, a call or a section matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// It ends at this offset.
    Done(usize),
    /// The text ends inside it.
    Partial,
    /// It is not here.
    No,
}

fn skip_ws(s: &str, i: usize) -> usize {
    i + s[i..].len() - s[i..].trim_start().len()
}

/// A marker at `s[i..]` (after white space): where it ends, or whether the text stops
/// inside it.
pub(super) fn lit(s: &str, i: usize, lit: &str) -> Step {
    let i = skip_ws(s, i);
    let rest = &s[i..];
    let l = lit.trim();
    if rest.starts_with(l) {
        Step::Done(i + l.len())
    } else if l.starts_with(rest) {
        Step::Partial
    } else {
        Step::No
    }
}

/// A run of `ok` characters at `s[i..]` (after white space).
fn word(s: &str, i: usize, ok: impl Fn(char) -> bool) -> (Step, &str) {
    let i = skip_ws(s, i);
    let len = s[i..].find(|c: char| !ok(c)).unwrap_or(s.len() - i);
    let w = &s[i..i + len];
    match (len, i + len == s.len()) {
        (0, true) => (Step::Partial, w),
        (0, false) => (Step::No, w),
        (_, true) => (Step::Partial, w),
        (_, false) => (Step::Done(i + len), w),
    }
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A call being read.
#[derive(Debug, Default)]
struct Draft {
    name: Option<String>,
    id: Option<String>,
    args: String,
}

impl Draft {
    fn call(self, complete: bool) -> Option<Call> {
        Some(Call {
            name: self.name?,
            id: self.id,
            arguments: self.args,
            complete,
        })
    }
}

impl Format {
    /// Reads one call at `s[i..]`.
    fn call_at(&self, syn: &CallSyntax, s: &str, i: usize) -> (Step, Option<Call>) {
        let mut d = Draft::default();
        let mut pos = i;
        for piece in syn.call {
            let step = match *piece {
                Piece::Lit(l) => lit(s, pos, l),
                Piece::Name => {
                    let (st, w) = word(s, pos, is_name);
                    if matches!(st, Step::Done(_)) {
                        d.name = Some(w.to_string());
                    }
                    st
                }
                Piece::Id => {
                    let (st, w) = word(s, pos, |c| c.is_ascii_alphanumeric());
                    if matches!(st, Step::Done(_)) {
                        d.id = Some(w.to_string());
                    }
                    st
                }
                Piece::Index => word(s, pos, |c| c.is_ascii_digit()).0,
                Piece::Args => {
                    let start = skip_ws(s, pos);
                    match value_end(s.as_bytes(), start) {
                        Extent::Complete(e) => {
                            d.args = s[start..e].to_string();
                            Step::Done(e)
                        }
                        Extent::Partial => {
                            d.args = s[start..].to_string();
                            Step::Partial
                        }
                        Extent::Invalid => Step::No,
                    }
                }
                Piece::Object(keys) => object(s, pos, keys, &mut d),
                Piece::Params(p) => self.params(s, pos, p, &mut d),
            };
            match step {
                Step::Done(e) => pos = e,
                other => return (other, d.call(false)),
            }
        }
        (Step::Done(pos), d.call(true))
    }

    /// Reads the calls of a section starting at `s[i..]` into `out`; returns where the
    /// section ends.
    pub(super) fn calls_at(
        &self,
        syn: &CallSyntax,
        s: &str,
        i: usize,
        out: &mut Vec<Call>,
    ) -> Step {
        let mut pos = i;
        for l in syn.open {
            match lit(s, pos, l) {
                Step::Done(e) => pos = e,
                other => return other,
            }
        }
        if syn.array {
            let (items, end) = entries(s.as_bytes(), skip_ws(s, pos));
            for item in &items {
                let mut d = Draft::default();
                let step = match syn.call {
                    [Piece::Object(keys)] => object(s, item.start, *keys, &mut d),
                    _ => Step::No,
                };
                let complete = matches!(step, Step::Done(_));
                out.extend(d.call(complete));
                if !complete {
                    return step;
                }
            }
            return match end {
                Extent::Complete(e) => match syn.close.map(|c| lit(s, e, c)) {
                    Some(Step::Done(e)) => Step::Done(e),
                    Some(Step::Partial) => Step::Partial,
                    _ => Step::Done(e),
                },
                Extent::Partial => Step::Partial,
                Extent::Invalid => Step::No,
            };
        }
        let mut first = true;
        loop {
            if !first && !syn.between.trim().is_empty() {
                match lit(s, pos, syn.between) {
                    Step::Done(e) => pos = e,
                    Step::Partial => return Step::Partial,
                    Step::No => break,
                }
            }
            let (step, call) = self.call_at(syn, s, pos);
            match step {
                Step::Done(e) => {
                    out.extend(call);
                    pos = e;
                    first = false;
                }
                Step::Partial => {
                    out.extend(call);
                    return Step::Partial;
                }
                Step::No if first => return Step::No,
                Step::No => break,
            }
        }
        match syn.close.map(|c| lit(s, pos, c)) {
            Some(Step::Done(e)) => Step::Done(e),
            Some(Step::Partial) if skip_ws(s, pos) < s.len() => Step::Partial,
            _ => Step::Done(pos),
        }
    }

    /// `{"k": v, ...}` from parameters written one by one; closed when the call is.
    fn params(&self, s: &str, i: usize, p: Params, d: &mut Draft) -> Step {
        let types = d.name.as_deref().and_then(|n| self.param_types.get(n));
        let mut pos = i;
        let mut json = String::from("{");
        let mut n = 0;
        let step = loop {
            match lit(s, pos, p.open) {
                Step::Done(e) => pos = e,
                Step::Partial if skip_ws(s, pos) < s.len() => break Step::Partial,
                Step::Partial => break Step::Partial,
                Step::No => break Step::Done(pos),
            }
            let Some(kend) = s[pos..].find(p.key_end) else {
                break Step::Partial;
            };
            let key = s[pos..pos + kend].trim().to_string();
            pos += kend + p.key_end.len();
            let mut raw_string = None;
            if p.string_attr {
                let rest = &s[pos..];
                let Some(gt) = rest.find('>') else {
                    break Step::Partial;
                };
                raw_string = Some(!rest[..gt].contains("false"));
                pos += gt + 1;
            }
            if !p.value.is_empty() {
                match lit(s, pos, p.value) {
                    Step::Done(e) => pos = e,
                    other => break other,
                }
            }
            let Some(vend) = s[pos..].find(p.close) else {
                break Step::Partial;
            };
            let mut value = &s[pos..pos + vend];
            pos += vend + p.close.len();
            if p.newlines {
                value = value.strip_prefix('\n').unwrap_or(value);
                value = value.strip_suffix('\n').unwrap_or(value);
            }
            let kind = types.and_then(|t| t.get(&key)).map(String::as_str);
            let v = typed(value, kind, raw_string);
            if n > 0 {
                json.push_str(", ");
            }
            json.push_str(&serde_json::to_string(&key).expect("keys serialise"));
            json.push_str(": ");
            json.push_str(&v.to_string());
            n += 1;
        };
        if matches!(step, Step::Done(_)) {
            json.push('}');
        }
        d.args = json;
        step
    }
}

/// A parameter's value: its JSON when the schema says it is not a string (or the
/// template marked it so), else the text.
fn typed(raw: &str, kind: Option<&str>, raw_string: Option<bool>) -> Value {
    let text = raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
        .unwrap_or(raw);
    let as_json = match (raw_string, kind) {
        (Some(is_string), _) => !is_string,
        (None, Some("string")) => false,
        (None, Some(_)) => true,
        (None, None) => {
            let t = text.trim();
            t.starts_with(['{', '['])
                || t.parse::<f64>().is_ok()
                || matches!(t, "true" | "false" | "null")
        }
    };
    if as_json {
        let t = text.trim();
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return v;
        }
        // Python spellings some templates write for booleans.
        match t {
            "True" => return Value::Bool(true),
            "False" => return Value::Bool(false),
            "None" => return Value::Null,
            _ => {}
        }
    }
    Value::String(text.to_string())
}

/// Reads a call written as one JSON object into `d`.
fn object(s: &str, i: usize, keys: Keys, d: &mut Draft) -> Step {
    let start = skip_ws(s, i);
    if start >= s.len() {
        return Step::Partial;
    }
    let (items, end) = entries(s.as_bytes(), start);
    if matches!(end, Extent::Invalid) && items.is_empty() {
        return Step::No;
    }
    let text = |e: &Entry| match e.end {
        Extent::Complete(x) => Some(&s[e.start..x]),
        _ => None,
    };
    for e in &items {
        let whole = text(e);
        if keys.name.is_empty() {
            // The short form: `{"NAME": {args}}`.
            d.name = Some(e.key.clone());
            d.args = whole.unwrap_or(&s[e.start..]).to_string();
            break;
        }
        if e.key == keys.name {
            d.name = whole.and_then(|w| serde_json::from_str::<String>(w).ok());
        } else if e.key == keys.args {
            d.args = whole.unwrap_or(&s[e.start..]).to_string();
        } else if Some(e.key.as_str()) == keys.id {
            d.id = whole.and_then(|w| match serde_json::from_str::<Value>(w).ok()? {
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            });
        }
    }
    match end {
        Extent::Complete(e) if d.name.is_some() => Step::Done(e),
        Extent::Complete(_) => Step::No,
        Extent::Partial => Step::Partial,
        Extent::Invalid => Step::No,
    }
}

/// A call written as one JSON object at `s[i..]`, and whether it is complete.
pub(super) fn object_call(s: &str, i: usize, keys: Keys) -> (Option<Call>, bool) {
    let mut d = Draft::default();
    let complete = matches!(object(s, i, keys, &mut d), Step::Done(_));
    (d.call(complete), complete)
}
