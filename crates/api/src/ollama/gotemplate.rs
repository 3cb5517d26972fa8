//! The part of Go's `text/template` that Ollama's prompt templates for `/api/generate`
//! use most: text, `{{ .System }}`, `{{ .Prompt }}`, `{{ .Response }}`, `{{ if .X }}`
//! with `{{ else }}` and `{{ end }}`, and the `{{-`/`-}}` whitespace trims. A template
//! with anything else (loops over `.Messages`, functions, pipelines) is refused with the
//! action it used: chat models use their GGUF's own Jinja chat template instead.

/// The values a template sees.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars<'a> {
    pub system: &'a str,
    pub prompt: &'a str,
    pub response: &'a str,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            ".System" => Some(self.system),
            ".Prompt" => Some(self.prompt),
            ".Response" => Some(self.response),
            _ => None,
        }
    }
}

enum Node {
    Text(String),
    Var(String),
    If(String, Vec<Node>, Vec<Node>),
}

/// Splits into text and actions, applying the trim markers.
fn lex(src: &str) -> Result<Vec<(bool, String)>, String> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(at) = rest.find("{{") {
        let mut text = rest[..at].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[at + 2..];
        let end = after.find("}}").ok_or("an action is not closed with }}")?;
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end().to_string();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        out.push((false, text));
        out.push((true, action.trim().to_string()));
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    out.push((false, text.to_string()));
    Ok(out)
}

fn parse(
    items: &mut std::vec::IntoIter<(bool, String)>,
    inner: bool,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while let Some((is_action, s)) = items.next() {
        if !is_action {
            if !s.is_empty() {
                nodes.push(Node::Text(s));
            }
            continue;
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            [v] if v.starts_with('.') => nodes.push(Node::Var((*v).to_string())),
            ["if", v] if v.starts_with('.') => {
                let (then, stop) = parse(items, true)?;
                let otherwise = match stop.as_deref() {
                    Some("else") => {
                        let (o, stop) = parse(items, true)?;
                        if stop.as_deref() != Some("end") {
                            return Err("{{ else }} without {{ end }}".into());
                        }
                        o
                    }
                    Some("end") => Vec::new(),
                    _ => return Err(format!("{{{{ if {v} }}}} without {{{{ end }}}}")),
                };
                nodes.push(Node::If((*v).to_string(), then, otherwise));
            }
            ["else"] | ["end"] if inner => return Ok((nodes, Some(s))),
            _ => {
                return Err(format!(
                    "{{{{ {s} }}}} is not supported; templates here use .System, .Prompt, .Response and if/else/end"
                ))
            }
        }
    }
    if inner {
        return Err("an {{ if }} is not closed with {{ end }}".into());
    }
    Ok((nodes, None))
}

fn eval(nodes: &[Node], vars: &Vars<'_>, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Var(v) => {
                out.push_str(vars.get(v).ok_or_else(|| format!("unknown variable {v}"))?)
            }
            Node::If(v, then, otherwise) => {
                let set = !vars
                    .get(v)
                    .ok_or_else(|| format!("unknown variable {v}"))?
                    .is_empty();
                eval(if set { then } else { otherwise }, vars, out)?;
            }
        }
    }
    Ok(())
}

/// Renders `src` with `vars`; the error says what is not supported.
pub(crate) fn render(src: &str, vars: &Vars<'_>) -> Result<String, String> {
    let (nodes, _) = parse(&mut lex(src)?.into_iter(), false)?;
    let mut out = String::new();
    eval(&nodes, vars, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end -}}\n<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n";

    #[test]
    fn renders_the_common_templates() {
        let v = Vars {
            system: "be kind",
            prompt: "hi",
            response: "",
        };
        assert_eq!(
            render(CHATML, &v).unwrap(),
            "<|im_start|>system\nbe kind<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let v = Vars {
            prompt: "hi",
            ..Vars::default()
        };
        assert_eq!(
            render(CHATML, &v).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            render("{{ if .System }}S{{ else }}none{{ end }}:{{ .Prompt }}", &v).unwrap(),
            "none:hi"
        );
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        for t in [
            "{{ range .Messages }}{{ .Content }}{{ end }}",
            "{{ if .System }}x",
            "{{ .Prompt",
            "{{ .Tools }}",
            "{{ end }}",
        ] {
            assert!(render(t, &Vars::default()).is_err(), "{t}");
        }
    }
}
