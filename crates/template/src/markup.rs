//! Jinja2's safe strings under `+`, as transformers renders them.
//!
//! In Jinja2 a `|safe` (or `|escape`) string is a `Markup`, and Python's `+` between a
//! `Markup` and a plain string HTML-escapes the plain one, autoescape or not (`~` does
//! not; it joins plain strings, and binds tighter than `+`). One Functionary template relies on it:
//! `"Use the function '"|safe + name + "' to '"|safe + description + ...` renders the
//! description's quotes as `&#39;`. minijinja escapes there only with autoescape on, so
//! templates that make safe strings have their top-level `+` chains in `{{ ... }}` and
//! `{% set x = ... %}` rewritten into calls of [`ADD`], which does what `Markup` does and
//! leaves every other `+` to minijinja.

use minijinja::value::Value;
use minijinja::{Error, ErrorKind, State};

/// The function `+` chains become.
pub(crate) const ADD: &str = "__markup_add";

/// `a + b` with Jinja2's `Markup` rules.
pub(crate) fn add(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return Ok(match (a.is_safe(), b.is_safe()) {
            (false, false) => Value::from(format!("{x}{y}")),
            (true, true) => Value::from_safe_string(format!("{x}{y}")),
            (true, false) => Value::from_safe_string(format!("{x}{}", escape(y))),
            (false, true) => Value::from_safe_string(format!("{}{y}", escape(x))),
        });
    }
    state
        .env()
        .compile_expression("a + b")?
        .eval(minijinja::context! { a => a, b => b })
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// markupsafe's escape.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether the source makes safe strings (`|safe`, `|e`, `|escape`, `|forceescape`).
pub(crate) fn makes_safe_strings(src: &str) -> bool {
    src.match_indices('|').any(|(i, _)| {
        let rest = src[i + 1..].trim_start();
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        matches!(word.as_str(), "safe" | "e" | "escape" | "forceescape")
    })
}

/// What a scan of an expression's top level finds.
struct Scan {
    /// Where its `+` are.
    plus: Vec<usize>,
    /// Its `(...)` and `[...]` groups: where they open and close.
    groups: Vec<(usize, usize)>,
    /// Whether an operator that binds looser than `+` is there (a split at `+` would
    /// cut its operands).
    looser: bool,
}

/// Scans `expr`'s top level; `None` when its quotes or brackets do not balance.
fn scan(expr: &str) -> Option<Scan> {
    let b = expr.as_bytes();
    let mut s = Scan {
        plus: Vec::new(),
        groups: Vec::new(),
        looser: false,
    };
    let (mut depth, mut quote, mut open) = (0i32, None::<u8>, (0, 0u8));
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'(' | b'[' | b'{' => {
                if depth == 0 {
                    open = (i, c);
                }
                depth += 1;
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 && open.1 != b'{' {
                    s.groups.push((open.0, i));
                }
            }
            _ if depth > 0 => {}
            b'+' => s.plus.push(i),
            b'-' | b'=' | b'!' | b'<' | b'>' | b',' | b':' => s.looser = true,
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let after_dot_or_bar = start > 0 && matches!(b[start - 1], b'.' | b'|');
                let word = &expr[start..i];
                if !after_dot_or_bar
                    && matches!(word, "and" | "or" | "not" | "if" | "else" | "in" | "is")
                {
                    s.looser = true;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (quote.is_none() && depth == 0).then_some(s)
}

/// `expr` with its `+` chains, at the top level and inside brackets, as nested [`ADD`]
/// calls; unchanged where it cannot tell the operands.
fn rewrite_expr(expr: &str) -> String {
    let Some(scan) = scan(expr) else {
        return expr.to_string();
    };
    let mut bounds = vec![0];
    if !scan.looser {
        bounds.extend(scan.plus.iter().copied());
    }
    bounds.push(expr.len());
    let operands: Vec<&str> = bounds
        .windows(2)
        .enumerate()
        .map(|(k, w)| &expr[w[0] + usize::from(k > 0)..w[1]])
        .collect();
    if operands.len() == 1 || operands.iter().any(|p| p.trim().is_empty()) {
        return in_groups(expr, &scan.groups);
    }
    let mut out = String::new();
    for (k, p) in operands.iter().enumerate() {
        let p = p.trim();
        let p = in_groups(p, &scan_groups(p));
        out = if k == 0 {
            p
        } else {
            format!("{ADD}({out}, {p})")
        };
    }
    let lead = &expr[..expr.len() - expr.trim_start().len()];
    let trail = &expr[expr.trim_end().len()..];
    format!("{lead}{out}{trail}")
}

fn scan_groups(expr: &str) -> Vec<(usize, usize)> {
    scan(expr).map(|s| s.groups).unwrap_or_default()
}

/// `expr` with each comma-separated item inside its groups rewritten.
fn in_groups(expr: &str, groups: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut at = 0;
    for &(open, close) in groups {
        out.push_str(&expr[at..=open]);
        let inner = &expr[open + 1..close];
        let mut from = 0;
        let mut items = Vec::new();
        let mut split = scan_commas(inner);
        split.push(inner.len());
        for c in split {
            items.push(rewrite_expr(&inner[from..c]));
            from = c + 1;
        }
        out.push_str(&items.join(","));
        at = close;
    }
    out.push_str(&expr[at..]);
    out
}

/// Where `expr`'s top-level commas are.
fn scan_commas(expr: &str) -> Vec<usize> {
    let (mut depth, mut quote, mut out) = (0i32, None::<u8>, Vec::new());
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, c @ (b'\'' | b'"')) => quote = Some(c),
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => depth -= 1,
            (None, b',') if depth == 0 => out.push(i),
            _ => {}
        }
        i += 1;
    }
    out
}

/// The end of the `{{ ... }}` or `{% ... %}` starting at `start` (the index after its
/// closer), skipping closers inside strings and brackets.
fn tag_end(src: &str, start: usize, closer: u8) -> Option<usize> {
    let b = src.as_bytes();
    let (mut depth, mut quote) = (0i32, None::<u8>);
    let mut i = start + 2;
    while i + 1 < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b'{' if closer == b'}' => depth += 1,
                b'}' if closer == b'}' && depth > 0 => depth -= 1,
                _ if c == closer && b[i + 1] == b'}' && depth <= 0 => return Some(i + 2),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// Rewrites one tag (with its markers) if it is an output or a plain `set`.
fn rewrite_tag(tag: &str) -> Option<String> {
    let trim = |s: &str| -> usize { usize::from(s.starts_with(['-', '+'])) };
    let open = 2 + trim(&tag[2..]);
    // The close marker's `-`/`+` is looked for after the open marker: in `{{-}}` the
    // two would overlap (fuzzing found the slice out of bounds).
    let room = tag.len().checked_sub(open + 2)?;
    let close = 2 + usize::from(room > 0 && tag[..tag.len() - 2].ends_with(['-', '+']));
    let inner = &tag[open..tag.len() - close];
    let (head, expr) = if tag.starts_with("{{") {
        ("", inner)
    } else {
        let body = inner.trim_start().strip_prefix("set ")?;
        let (target, expr) = body.split_once('=')?;
        let target = target.trim();
        if target.is_empty()
            || !target
                .chars()
                .all(|c| c.is_alphanumeric() || "_.".contains(c))
        {
            return None;
        }
        (&inner[..inner.len() - expr.len()], expr)
    };
    let new = rewrite_expr(expr);
    (new != expr).then(|| format!("{}{head}{new}{}", &tag[..open], &tag[tag.len() - close..]))
}

/// The source with `+` chains in outputs and `set`s rewritten (comments and raw blocks
/// are left alone).
pub(crate) fn rewrite(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let mut i = 0;
    while let Some(off) = src[i..].find('{') {
        let start = i + off;
        let next = src.as_bytes().get(start + 1).copied();
        let end = match next {
            Some(b'{') => tag_end(src, start, b'}'),
            Some(b'%') => tag_end(src, start, b'%'),
            Some(b'#') => src[start..].find("#}").map(|e| start + e + 2),
            _ => None,
        };
        let Some(end) = end else {
            out.push_str(&src[i..=start]);
            i = start + 1;
            continue;
        };
        out.push_str(&src[i..start]);
        let tag = &src[start..end];
        if tag.starts_with("{%")
            && tag[2..]
                .trim_start_matches(['-', '+'])
                .trim_start()
                .starts_with("raw")
        {
            let close = src[end..].find("endraw").map_or(src.len(), |e| end + e);
            out.push_str(&src[start..close]);
            i = close;
            continue;
        }
        match rewrite_tag(tag).filter(|_| next != Some(b'#')) {
            Some(t) => out.push_str(&t),
            None => out.push_str(tag),
        }
        i = end;
    }
    out.push_str(&src[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_become_calls_and_the_rest_stays() {
        assert_eq!(
            rewrite(r#"{{ "a '"|safe + t["n"] + "'"|safe + t | tojson() }}"#),
            r#"{{ __markup_add(__markup_add(__markup_add("a '"|safe, t["n"]), "'"|safe), t | tojson()) }}"#
        );
        assert_eq!(
            rewrite("{%- set x = a + b.c('+') -%}"),
            "{%- set x = __markup_add(a, b.c('+')) -%}"
        );
        assert_eq!(
            rewrite("{{ f(a + b, [c + d]) ~ (e|safe + g) if x else y }}"),
            "{{ f(__markup_add(a, b), [__markup_add(c, d)]) ~ (__markup_add(e|safe, g)) if x else y }}"
        );
        // `~` binds tighter than `+`, in Jinja2 as in minijinja.
        assert_eq!(rewrite("{{ a ~ b + c }}"), "{{ __markup_add(a ~ b, c) }}");
        for same in [
            "{{ a + b if c else d }}",
            "{{ n - 1 + 2 }}",
            "{# {{ a + b }} #}",
            "{% raw %}{{ a + b }}{% endraw %}",
            "{% if a + b %}{% endif %}",
            "{{ 'x' }}",
            "{{ {'a': {'b': 1}} }}",
        ] {
            assert_eq!(rewrite(same), same);
        }
        // Markers with no room between them pass through (fuzzing found these).
        for odd in ["{{-}}", "{{--}}", "{%-%}", "{{}}", "{%+%}"] {
            assert_eq!(rewrite(odd), odd);
        }
        assert!(makes_safe_strings("{{ x | safe }}"));
        assert!(makes_safe_strings("{{ x|e }}"));
        assert!(!makes_safe_strings("{{ x|select('safe') }} safety"));
    }
}
