//! Functions and filters real templates use, with Python's semantics.

use std::fmt::Write as _;

use chrono::NaiveDateTime;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

pub(crate) fn install(env: &mut Environment<'static>) {
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("raise_exception: {msg}"),
        ))
    });
    env.add_filter("tojson", tojson);
    env.add_filter("indent", indent);
}

/// Jinja2's `indent(width=4, first=False, blank=False)`: lines after the first (and the
/// first with `first`) get `width` spaces (or the string `width`); blank lines stay
/// blank unless `blank`. Unlike minijinja's own, a trailing newline is kept.
fn indent(s: Value, width: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let first: bool = kwargs.get::<Option<bool>>("first")?.unwrap_or(false);
    let blank: bool = kwargs.get::<Option<bool>>("blank")?.unwrap_or(false);
    let width = match kwargs.get::<Option<Value>>("width")?.or(width) {
        None => "    ".to_string(),
        Some(w) => match w.as_str() {
            Some(text) => text.to_string(),
            None => " ".repeat(usize::try_from(w).unwrap_or(4)),
        },
    };
    kwargs.assert_all_used()?;
    let safe = s.is_safe();
    let text = s.to_string() + "\n";
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + lines.len() * width.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            if blank || !line.is_empty() {
                out.push_str(&width);
            }
        }
        out.push_str(line);
    }
    if first {
        out.insert_str(0, &width);
    }
    Ok(if safe {
        Value::from_safe_string(out)
    } else {
        Value::from(out)
    })
}

/// `strftime` with Python's codes (chrono's are a superset for the common ones).
pub(crate) fn strftime(now: NaiveDateTime, fmt: &str) -> Result<String, Error> {
    let mut s = String::new();
    write!(s, "{}", now.format(fmt)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("bad strftime format {fmt:?}"),
        )
    })?;
    Ok(s)
}

/// `json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)`.
fn tojson(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match (&separators, indent) {
        (Some(s), _) if s.len() == 2 => (s[0].clone(), s[1].clone()),
        (_, Some(_)) => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let mut out = String::new();
    dump(
        &v,
        &mut out,
        indent,
        0,
        &item_sep,
        &key_sep,
        sort_keys.unwrap_or(false),
    )?;
    if ensure_ascii == Some(true) {
        out = escape_non_ascii(&out);
    }
    // A plain string, as transformers' `tojson` returns (Jinja2's own gives `Markup`).
    Ok(Value::from(out))
}

/// Python's `ensure_ascii`: every non-ASCII character as `\uXXXX` (UTF-16 units).
fn escape_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", u);
            }
        }
    }
    out
}

fn dump(
    v: &Value,
    out: &mut String,
    indent: Option<usize>,
    level: usize,
    item_sep: &str,
    key_sep: &str,
    sort: bool,
) -> Result<(), Error> {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let sep = if indent.is_some() {
        item_sep.trim_end()
    } else {
        item_sep
    };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Some(f) = v.as_i64() {
                out.push_str(&f.to_string());
            } else {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                out.push_str(&python_float(f));
            }
        }
        ValueKind::String => json_string(v.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                dump(item, out, indent, level + 1, item_sep, key_sep, sort)?;
            }
            newline(out, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if sort {
                keys.sort();
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                match k.as_str() {
                    Some(s) => json_string(s, out),
                    None => json_string(&k.to_string(), out),
                }
                out.push_str(key_sep);
                dump(
                    &v.get_item(k)?,
                    out,
                    indent,
                    level + 1,
                    item_sep,
                    key_sep,
                    sort,
                )?;
            }
            newline(out, level);
            out.push('}');
        }
        _ => json_string(&v.to_string(), out),
    }
    Ok(())
}

fn python_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A writer that refuses to grow past a limit.
pub(crate) struct BoundedWriter {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl BoundedWriter {
    pub(crate) fn new(limit: usize) -> Self {
        BoundedWriter {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub(crate) fn into_string(self) -> String {
        String::from_utf8(self.buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}

impl std::io::Write for BoundedWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
