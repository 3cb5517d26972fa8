//! Scanning JSON that may be cut off anywhere: the extent of a value, the spans of an
//! object's entries and an array's items, and the text of a string so far. Used to read
//! tool calls out of output that is still being generated, so that what is taken from
//! it only ever grows.

/// How far a JSON value reaches in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The value ends at this byte offset (exclusive).
    Complete(usize),
    /// The text ends inside the value.
    Partial,
    /// The text is not JSON here.
    Invalid,
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The extent of the string starting at `s[i] == '"'`.
fn string_end(s: &[u8], i: usize) -> Extent {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'"' => return Extent::Complete(j + 1),
            b'\n' => return Extent::Invalid,
            _ => j += 1,
        }
    }
    Extent::Partial
}

/// The extent of the JSON value at `s[i..]` (leading white space skipped).
pub(crate) fn value_end(s: &[u8], i: usize) -> Extent {
    let i = skip_ws(s, i);
    let Some(&c) = s.get(i) else {
        return Extent::Partial;
    };
    match c {
        b'"' => string_end(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => match string_end(s, j) {
                        Extent::Complete(e) => {
                            j = e;
                            continue;
                        }
                        other => return other,
                    },
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Extent::Complete(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Extent::Partial
        }
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let mut j = i;
            while j < s.len()
                && (s[j].is_ascii_alphanumeric() || matches!(s[j], b'-' | b'+' | b'.'))
            {
                j += 1;
            }
            if j == s.len() {
                Extent::Partial
            } else {
                Extent::Complete(j)
            }
        }
        _ => Extent::Invalid,
    }
}

/// One entry of an object (or one item of an array, with an empty key): where its value
/// starts and how far it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub start: usize,
    pub end: Extent,
}

/// The entries of the object or the items of the array at `s[i..]`, as far as the text
/// goes, and whether the container is closed (with its end).
pub(crate) fn entries(s: &[u8], i: usize) -> (Vec<Entry>, Extent) {
    let mut out = Vec::new();
    let i = skip_ws(s, i);
    let (is_object, close) = match s.get(i) {
        Some(b'{') => (true, b'}'),
        Some(b'[') => (false, b']'),
        Some(_) => return (out, Extent::Invalid),
        None => return (out, Extent::Partial),
    };
    let mut j = i + 1;
    loop {
        j = skip_ws(s, j);
        match s.get(j) {
            None => return (out, Extent::Partial),
            Some(c) if *c == close => return (out, Extent::Complete(j + 1)),
            Some(b',') => {
                j += 1;
                continue;
            }
            _ => {}
        }
        let mut key = String::new();
        if is_object {
            match string_end(s, j) {
                Extent::Complete(e) => {
                    key = serde_json::from_slice::<String>(&s[j..e]).unwrap_or_default();
                    j = skip_ws(s, e);
                    match s.get(j) {
                        Some(b':') => j += 1,
                        None => return (out, Extent::Partial),
                        Some(_) => return (out, Extent::Invalid),
                    }
                }
                other => return (out, other),
            }
        }
        let start = skip_ws(s, j);
        if start >= s.len() {
            return (out, Extent::Partial);
        }
        let end = value_end(s, start);
        out.push(Entry { key, start, end });
        match end {
            Extent::Complete(e) => j = e,
            other => return (out, other),
        }
    }
}

/// The text of the JSON string at `s[i..]` decoded as far as it goes, and whether it is
/// complete. An escape cut off at the end is left out until it is whole.
pub(crate) fn string_so_far(s: &str, i: usize) -> (String, bool) {
    let b = s.as_bytes();
    let i = skip_ws(b, i);
    if b.get(i) != Some(&b'"') {
        return (String::new(), false);
    }
    if let Extent::Complete(e) = string_end(b, i) {
        return (serde_json::from_str(&s[i..e]).unwrap_or_default(), true);
    }
    // Close the string at the last point where an escape is whole.
    let body = &s[i + 1..];
    let mut cut = body.len();
    if let Some(bs) = body.rfind('\\') {
        let tail = &body[bs..];
        let need = if tail.starts_with("\\u") { 6 } else { 2 };
        let run = body[..bs].chars().rev().take_while(|c| *c == '\\').count();
        if run % 2 == 0 && tail.len() < need {
            cut = bs;
        }
    }
    let text = serde_json::from_str(&format!("\"{}\"", &body[..cut])).unwrap_or_default();
    (text, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_of_whole_and_cut_values() {
        let s = br#"{"a": [1, "x}"], "b": {"c": null}} tail"#;
        assert_eq!(value_end(s, 0), Extent::Complete(34));
        assert_eq!(value_end(&s[..20], 0), Extent::Partial);
        assert_eq!(value_end(b"  12,", 0), Extent::Complete(4));
        assert_eq!(value_end(b"12", 0), Extent::Partial);
        assert_eq!(value_end(b"<x>", 0), Extent::Invalid);
        let (e, end) = entries(s, 0);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].key.as_str(), e[1].key.as_str()), ("a", "b"));
        assert_eq!(end, Extent::Complete(34));
        let (e, end) = entries(br#"[{"x": 1}, {"y"#, 0);
        assert_eq!(e.len(), 2);
        assert_eq!(end, Extent::Partial);
    }

    #[test]
    fn strings_decode_as_far_as_they_are_whole() {
        assert_eq!(string_so_far(r#""Par"#, 0), ("Par".into(), false));
        assert_eq!(string_so_far(r#""a\"b"#, 0), ("a\"b".into(), false));
        assert_eq!(string_so_far(r#""a\"#, 0), ("a".into(), false));
        assert_eq!(string_so_far(r#""a\u00e"#, 0), ("a".into(), false));
        assert_eq!(string_so_far(r#""a\u00e9" "#, 0), ("aé".into(), true));
        assert_eq!(string_so_far(r#""a\\"#, 0), ("a\\".into(), false));
    }
}
