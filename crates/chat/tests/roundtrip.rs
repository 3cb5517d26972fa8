//! Every real template in `../shared/chat-templates/` that renders tool calls: render an
//! assistant turn with one call and with two, read the rendered turn back with the
//! detected family's reader, and get the same calls; the same for reasoning. Then the
//! streaming reader on every rendered turn, split at every character boundary, must
//! give the same result as one read.

use chrono::NaiveDateTime;
use modelrunner_chat::{adapt_messages, template_vars, Family, Format, OutputReader, Parsed, Tool};
use modelrunner_template::ChatTemplate;
use modelrunner_testkit::shared_dir;
use serde_json::{json, Value};

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Get the time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string", "description": "Time zone"}, "hours": {"type": "integer", "description": "Offset"}},
                "required": ["zone", "hours"]}}}
    ])
}

fn call(id: &str, name: &str, args: Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
}

struct Template {
    file: String,
    source: String,
    family: Family,
    compiled: ChatTemplate,
}

fn templates() -> Option<Vec<Template>> {
    let dir = shared_dir().join("chat-templates");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        modelrunner_testkit::checks_less("../shared/chat-templates is missing");
        return None;
    };
    let mut out: Vec<Template> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jinja"))
        .map(|e| {
            let source = std::fs::read_to_string(e.path()).unwrap();
            Template {
                file: e.file_name().to_string_lossy().into_owned(),
                family: Family::detect(&source),
                compiled: ChatTemplate::new(&source).unwrap(),
                source,
            }
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Some(out)
}

fn now() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2024-07-26T12:00:00", "%Y-%m-%dT%H:%M:%S").unwrap()
}

/// The text a template renders for the assistant turn `assistant` after one user
/// question, and whether it starts inside the reasoning (the generation prompt opened
/// it). When the turn renders right after the generation prompt it is what follows it;
/// otherwise (templates that render history differently) what follows the part both
/// renders share, from the last marker boundary on.
fn assistant_text(t: &Template, assistant: Value) -> Option<(String, bool)> {
    let user = json!({"role": "user", "content": "What's the weather in Paris?"});
    let ctx = |messages: Vec<Value>, gen: bool| {
        let mut c = json!({"messages": adapt_messages(t.family, &messages), "tools": tools(),
               "add_generation_prompt": gen, "bos_token": "<s>", "eos_token": "</s>"});
        for (k, v) in template_vars(t.family, Some(&tools()), "Jul 26 2024 12:00:00 GMT") {
            c[k] = v;
        }
        c
    };
    let prompt = match t.compiled.render_at(&ctx(vec![user.clone()], true), now()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", t.file);
            return None;
        }
    };
    let with = match t
        .compiled
        .render_at(&ctx(vec![user, assistant], false), now())
    {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{}: {e}", t.file);
            return None;
        }
    };
    if let Some(rest) = with.strip_prefix(&prompt) {
        let open = Format::for_family(t.family, &t.source)
            .reasoning
            .is_some_and(|r| prompt.trim_end().ends_with(r.open));
        return Some((rest.to_string(), open));
    }
    let common = prompt
        .char_indices()
        .zip(with.chars())
        .take_while(|((_, a), b)| a == b)
        .last()
        .map_or(0, |((i, c), _)| i + c.len_utf8());
    let cut = with[..common].rfind(['>', '\n']).map_or(0, |i| i + 1);
    Some((with[cut..].to_string(), false))
}

fn format(t: &Template, forced_open: bool) -> Format {
    let tools = Tool::from_openai(&tools());
    Format {
        calls: true,
        forced_open,
        param_types: tools
            .iter()
            .map(|t| (t.name.clone(), t.param_types()))
            .collect(),
        ..Format::for_family(t.family, &t.source)
    }
}

fn args(p: &Parsed) -> Vec<(String, Value)> {
    p.calls
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_str(&c.arguments)
                .unwrap_or_else(|e| panic!("arguments {:?} do not parse: {e}", c.arguments));
            (c.name.clone(), v)
        })
        .collect()
}

/// Families read with their own syntax (the generic one asks for JSON instead, so its
/// templates' own renderings are not its format).
fn native(t: &Template) -> bool {
    t.family != Family::Generic
}

#[test]
fn every_template_maps_to_a_family_that_reads_its_calls_back() {
    let Some(all) = templates() else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    for t in &all {
        eprintln!("{:<55} {}", t.file, t.family.name());
        if !native(t) {
            continue;
        }
        let one = json!({"role": "assistant", "content": "",
            "tool_calls": [call("call_1", "get_weather", json!({"city": "Paris"}))]});
        let Some((text, open)) = assistant_text(t, one) else {
            failures.push(format!("{}: cannot render one call", t.file));
            continue;
        };
        if !text.contains("get_weather") {
            eprintln!("  (renders no calls in history)");
            continue;
        }
        let f = format(t, open);
        let got = args(&f.read(&text, false));
        if got != vec![("get_weather".to_string(), json!({"city": "Paris"}))] {
            failures.push(format!(
                "{} ({}): one call read as {got:?} from {text:?}",
                t.file,
                t.family.name()
            ));
            continue;
        }
        checked += 1;
        let two = json!({"role": "assistant", "content": "",
            "tool_calls": [call("call_1", "get_weather", json!({"city": "Paris"})),
                           call("call_2", "get_time", json!({"zone": "CET", "hours": 2}))]});
        match assistant_text(t, two) {
            // Templates that render only one call per turn, or refuse two.
            None => {}
            Some((text, _)) if !text.contains("get_time") => {}
            Some((text, _)) => {
                let got = args(&f.read(&text, false));
                let want = vec![
                    ("get_weather".to_string(), json!({"city": "Paris"})),
                    ("get_time".to_string(), json!({"zone": "CET", "hours": 2})),
                ];
                if got != want {
                    failures.push(format!(
                        "{} ({}): two calls read as {got:?} from {text:?}",
                        t.file,
                        t.family.name()
                    ));
                }
            }
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!("{checked} templates read their calls back");
    assert!(failures.is_empty(), "{} templates failed", failures.len());
    assert!(checked >= 30, "only {checked} templates checked");
}

#[test]
fn reasoning_reads_back_from_every_template_that_renders_it() {
    let Some(all) = templates() else { return };
    let mut checked = 0;
    for t in &all {
        let Some(tags) = format(t, false).reasoning else {
            continue;
        };
        let turn = json!({"role": "assistant", "content": "The answer.", "reasoning_content": "Let me think."});
        let Some((text, open)) = assistant_text(t, turn) else {
            continue;
        };
        let f = format(t, open);
        if !text.contains("Let me think.") || !text.contains(tags.close) {
            // This template drops the reasoning of the turn (or renders it elsewhere).
            continue;
        }
        let p = f.read(&text, false);
        assert_eq!(p.reasoning, "Let me think.", "{}: {text:?}", t.file);
        assert!(
            p.content.starts_with("The answer."),
            "{}: {:?} from {text:?}",
            t.file,
            p.content
        );
        checked += 1;
    }
    eprintln!("{checked} templates read their reasoning back");
    assert!(checked >= 10, "only {checked} templates render reasoning");
}

/// Reads `text` split at `cut`, in two pushes, and returns what the deltas add up to.
fn streamed(f: &Format, pieces: &[&str]) -> (String, String, Vec<(String, String)>) {
    let mut r = OutputReader::new(f.clone());
    let (mut reasoning, mut content) = (String::new(), String::new());
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut add = |d: modelrunner_chat::Delta| {
        reasoning.push_str(&d.reasoning);
        content.push_str(&d.content);
        for c in d.calls {
            if let Some((_, name)) = c.head {
                assert_eq!(c.index, calls.len(), "calls arrive in order");
                calls.push((name, String::new()));
            }
            calls[c.index].1.push_str(&c.arguments);
        }
    };
    for p in pieces {
        add(r.push(p));
    }
    add(r.finish());
    (reasoning, content, calls)
}

#[test]
fn streaming_at_every_boundary_equals_one_read() {
    let Some(all) = templates() else { return };
    let mut checked = 0;
    for t in all.iter().filter(|t| native(t)) {
        let turn = json!({"role": "assistant", "content": "Let me check.", "reasoning_content": "Hmm.",
            "tool_calls": [call("call_1", "get_weather", json!({"city": "Paris"})),
                           call("call_2", "get_time", json!({"zone": "CET", "hours": 2}))]});
        let Some((text, open)) = assistant_text(t, turn) else {
            continue;
        };
        let f = format(t, open);
        let whole = f.read(&text, false);
        let want = (
            whole.reasoning.clone(),
            whole.content.clone(),
            whole
                .calls
                .iter()
                .map(|c| (c.name.clone(), c.arguments.clone()))
                .collect::<Vec<_>>(),
        );
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        for &cut in &bounds {
            let got = streamed(&f, &[&text[..cut], &text[cut..]]);
            assert_eq!(got, want, "{} split at {cut} of {text:?}", t.file);
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(streamed(&f, &pieces), want, "{} char by char", t.file);
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} templates checked");
}
