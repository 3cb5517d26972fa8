//! Small GBNF helpers: quoting literals, and giving every rule of a converted grammar a
//! prefix so several can live in one grammar.

/// A GBNF string literal for `s`.
pub(crate) fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The names of the rules `g` defines (`name ::= ...` at the start of a line).
fn defined(g: &str) -> Vec<String> {
    g.lines()
        .filter_map(|l| {
            let (name, _) = l.split_once("::=")?;
            let name = name.trim();
            (!name.is_empty() && name.bytes().all(is_ident)).then(|| name.to_string())
        })
        .collect()
}

/// `g` with every rule it defines renamed `prefix` + name, in definitions and
/// references alike; literals, character classes and comments are left alone.
pub(crate) fn prefixed(g: &str, prefix: &str) -> String {
    let names = defined(g);
    let b = g.as_bytes();
    let mut out = String::with_capacity(g.len() + names.len() * prefix.len() * 4);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'[' => {
                let close = if b[i] == b'"' { b'"' } else { b']' };
                let start = i;
                i += 1;
                while i < b.len() && b[i] != close {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push_str(&g[start..i]);
            }
            b'#' => {
                let start = i;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push_str(&g[start..i]);
            }
            c if is_ident(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &g[start..i];
                if names.iter().any(|n| n == word) {
                    out.push_str(prefix);
                }
                out.push_str(word);
            }
            _ => {
                let start = i;
                i += 1;
                while i < b.len() && !g.is_char_boundary(i) {
                    i += 1;
                }
                out.push_str(&g[start..i]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_renamed_and_literals_kept() {
        let g = "root ::= \"{\" space \"root\" [a-z]{2,3} value\nvalue ::= \"x\\\"y\" | space # value\nspace ::= \" \"?\n";
        let p = prefixed(g, "t0-");
        assert!(
            p.starts_with("t0-root ::= \"{\" t0-space \"root\" [a-z]{2,3} t0-value\n"),
            "{p}"
        );
        assert!(
            p.contains("t0-value ::= \"x\\\"y\" | t0-space # value\n"),
            "{p}"
        );
        assert_eq!(lit("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
