//! Source rewrites for what transformers' Jinja2 allows and minijinja does not:
//! `{% generation %}` blocks (a transformers extension that only marks assistant text)
//! become blocks that always render, and Python list mutation in `set` statements
//! (`ns.ids.append(x)`, `ns.ids.pop(0)`; minijinja's lists are immutable) becomes
//! reassignment of the list.

/// One `{% ... %}` tag: its open and close markers (with whitespace control) and body.
struct Tag<'a> {
    open: &'a str,
    close: &'a str,
    inner: &'a str,
}

/// Splits `{%...%}` (at least 4 bytes: `rewrite` finds the close after the open).
fn split_tag(tag: &str) -> Tag<'_> {
    let open = if tag[2..].starts_with(['-', '+']) {
        &tag[..3]
    } else {
        &tag[..2]
    };
    // The close marker is looked for after the open one: `{%-%}` has no room for a
    // `-%}` as well (fuzzing found the overlap slicing out of bounds).
    let rest = &tag[open.len()..];
    let close = if rest.len() >= 3 && rest[..rest.len() - 2].ends_with(['-', '+']) {
        &rest[rest.len() - 3..]
    } else {
        &rest[rest.len() - 2..]
    };
    let inner = rest[..rest.len() - close.len()].trim();
    Tag { open, close, inner }
}

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            let mut c = p.chars();
            c.next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        })
}

/// `set TARGET = PATH.METHOD(ARGS)` as (target, path, method, args).
fn list_call(inner: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = inner.strip_prefix("set ")?;
    let (target, call) = rest.split_once('=')?;
    let call = call.trim().strip_suffix(')')?;
    let (head, args) = call.split_once('(')?;
    let (path, method) = head.rsplit_once('.')?;
    let target = target.trim();
    (is_path(target) && is_path(path) && matches!(method, "append" | "pop")).then_some((
        target,
        path,
        method,
        args.trim(),
    ))
}

/// What a tag becomes.
fn rewrite_tag(tag: &str) -> String {
    let Tag { open, close, inner } = split_tag(tag);
    match inner {
        "generation" => return format!("{open} if true {close}"),
        "endgeneration" => return format!("{open} endif {close}"),
        _ => {}
    }
    let Some((target, path, method, args)) = list_call(inner) else {
        return tag.to_string();
    };
    let set = |t: &str, v: String| format!("{open} set {t} = {v} {close}");
    match (method, args) {
        ("append", a) => {
            let mut s = set(path, format!("{path} + [{a}]"));
            if target != "_" {
                s.push_str(&set(target, "none".into()));
            }
            s
        }
        ("pop", "0") => set(target, format!("{path}[0]")) + &set(path, format!("{path}[1:]")),
        ("pop", "") => set(target, format!("{path}[-1]")) + &set(path, format!("{path}[:-1]")),
        _ => tag.to_string(),
    }
}

/// The source with every rewrite applied.
pub(crate) fn rewrite(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start + 2..].find("%}").map(|e| start + 2 + e + 2) else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&rewrite_tag(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn list_mutation_becomes_reassignment() {
        assert_eq!(
            rewrite("{%- set _ = ns.ids.append(x + 'a') -%}"),
            "{%- set ns.ids = ns.ids + [x + 'a'] -%}"
        );
        assert_eq!(
            rewrite("{% set id = ns.ids.pop(0) %}"),
            "{% set id = ns.ids[0] %}{% set ns.ids = ns.ids[1:] %}"
        );
        assert_eq!(
            rewrite("{%- generation -%}x{% endgeneration %}"),
            "{%- if true -%}x{% endif %}"
        );
        assert_eq!(rewrite("{% set a = b.get(1) %}"), "{% set a = b.get(1) %}");
        // Tags with no room for their markers pass through (fuzzing found these).
        for odd in ["{%-%}", "{%}", "{%--%}", "{%+%}x", "{%%}"] {
            assert_eq!(rewrite(odd), odd);
        }
    }
}
