//! The grammar that holds generation to a family's call syntax and each tool's schema:
//! lazy (free text until the family's trigger, then only valid calls) for
//! `tool_choice: auto`, strict from the first token for `required` and a named tool.

mod gbnf;

use serde_json::Value;

use crate::family::Family;
use crate::read::Format;
use crate::syntax::{CallSyntax, IdKind, Keys, Params, Piece, ReasoningTags};
use crate::tools::{Choice, Tool};

pub(crate) use gbnf::lit;

/// A JSON schema to GBNF converter (llama.cpp's, in the engine); its grammar's start rule
/// is `root`.
pub type Converter<'a> = &'a dyn Fn(&Value) -> Result<String, String>;

/// What constrains sampling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The grammar (start rule `root`).
    pub grammar: String,
    /// Whether it applies only from a trigger on.
    pub lazy: bool,
    /// Regular expressions over the whole output so far; when one matches, the grammar
    /// takes over from its first capture group.
    pub triggers: Vec<String>,
}

/// Why no grammar could be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrammarError {
    /// The parameter at fault (`tools[2].function.parameters`).
    pub param: String,
    /// What is wrong.
    pub message: String,
}

const COMMON: &str = r#"tc-ws ::= | " " | "\n" [ \t]{0,20}
tc-text ::= ( [^<] | "<" [^/<] )*
tc-string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
"#;

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

struct Builder<'a> {
    convert: Converter<'a>,
    rules: String,
    tools: &'a [Tool],
}

impl Builder<'_> {
    /// The rule for a schema, converted and renamed under `prefix`.
    fn schema(
        &mut self,
        schema: &Value,
        prefix: &str,
        param: &str,
    ) -> Result<String, GrammarError> {
        let g = (self.convert)(schema).map_err(|e| GrammarError {
            param: param.to_string(),
            message: format!("cannot turn this schema into a grammar: {e}"),
        })?;
        self.rules.push_str(&gbnf::prefixed(&g, prefix));
        self.rules.push('\n');
        Ok(format!("{prefix}root"))
    }

    fn id(kind: IdKind) -> &'static str {
        match kind {
            IdKind::Nine => "[a-zA-Z0-9]{9}",
            IdKind::Counter => "[0-9]{1,3}",
            IdKind::Any => "[a-zA-Z0-9_-]{4,32}",
        }
    }

    fn object(&self, keys: Keys, name: &str, args: &str) -> String {
        let key = |k: &str| format!("{} tc-ws \":\" tc-ws", lit(&format!("\"{k}\"")));
        if keys.name.is_empty() {
            return format!(
                "\"{{\" tc-ws {} tc-ws \"}}\"",
                format_args!("{} {args}", key(name))
            );
        }
        let mut s = format!(
            "\"{{\" tc-ws {} {} tc-ws \",\" tc-ws {} {args}",
            key(keys.name),
            lit(&format!("\"{name}\"")),
            key(keys.args)
        );
        if let Some(id) = keys.id {
            s.push_str(&format!(
                " tc-ws \",\" tc-ws {} \"\\\"\" {} \"\\\"\"",
                key(id),
                Self::id(keys.id_kind)
            ));
        }
        s.push_str(" tc-ws \"}\"");
        s
    }

    fn params(&mut self, p: Params, t: usize, tool: &Tool) -> Result<String, GrammarError> {
        let props = tool.parameters.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = tool
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for (j, (key, schema)) in props.into_iter().flatten().enumerate() {
            let is_string = schema.get("type").and_then(Value::as_str) == Some("string");
            let value = if is_string {
                "tc-text".to_string()
            } else {
                let param = format!("{}.properties.{key}", tool.param);
                self.schema(schema, &format!("t{t}p{j}-"), &param)?
            };
            let attr = match (p.string_attr, is_string) {
                (false, _) => String::new(),
                (true, true) => lit(" string=\"true\">"),
                (true, false) => lit(" string=\"false\">"),
            };
            let value = if p.newlines {
                format!("\"\\n\" {value} \"\\n\"")
            } else {
                value
            };
            let value_open = if p.value.is_empty() {
                String::new()
            } else {
                format!("tc-ws {}", lit(p.value))
            };
            let one = format!(
                "{} {} {} {attr} {value_open} {value} {} tc-ws",
                lit(p.open),
                lit(key),
                lit(p.key_end),
                lit(p.close)
            );
            out.push(if required.contains(&key.as_str()) {
                one
            } else {
                format!("( {one} )?")
            });
        }
        Ok(format!("tc-ws {}", out.join(" ")))
    }

    /// One call of tool `t`, as the syntax writes it.
    fn call(&mut self, syn: &CallSyntax, t: usize) -> Result<String, GrammarError> {
        let tools = self.tools;
        let tool = &tools[t];
        let mut parts = Vec::new();
        let mut args = None;
        let mut args_rule = |b: &mut Self| -> Result<String, GrammarError> {
            if let Some(a) = &args {
                return Ok(String::clone(a));
            }
            let r = b.schema(&tool.parameters, &format!("t{t}-"), &tool.param)?;
            args = Some(r.clone());
            Ok(r)
        };
        let mut tight = true;
        for piece in syn.call {
            // White space may stand between markers and values, never inside a name
            // or next to one (`to=functions.NAME`, `<function=NAME>`).
            let word = matches!(piece, Piece::Name | Piece::Id | Piece::Index);
            if !parts.is_empty() && !word && !tight {
                parts.push("tc-ws".to_string());
            }
            tight = word;
            parts.push(match *piece {
                Piece::Lit(l) => lit(l),
                Piece::Name => lit(&tool.name),
                Piece::Id => Self::id(IdKind::Nine).to_string(),
                Piece::Index => "[0-9]{1,3}".to_string(),
                Piece::Args => args_rule(self)?,
                Piece::Object(keys) => {
                    let a = args_rule(self)?;
                    self.object(keys, &tool.name, &a)
                }
                Piece::Params(p) => self.params(p, t, tool)?,
            });
        }
        Ok(parts.join(" "))
    }

    /// Every allowed call, one alternative per tool.
    fn calls(&mut self, syn: &CallSyntax, allowed: &[usize]) -> Result<String, GrammarError> {
        let mut alts = Vec::new();
        for &t in allowed {
            alts.push(self.call(syn, t)?);
        }
        self.rules
            .push_str(&format!("tc-call ::= {}\n", alts.join(" | ")));
        Ok("tc-call".to_string())
    }
}

/// A reasoning block the strict grammar lets through before the calls.
fn thinking(tags: Option<ReasoningTags>, forced_open: bool) -> String {
    match tags {
        Some(t) if forced_open => format!("tc-text {} tc-ws", lit(t.close)),
        Some(t) => format!("( {} tc-text {} tc-ws )?", lit(t.open), lit(t.close)),
        None => String::new(),
    }
}

/// The constraint for a request, or `None` when nothing needs constraining
/// (`tool_choice: none`, no tools).
pub fn build(
    format: &Format,
    tools: &[Tool],
    choice: &Choice,
    parallel: bool,
    convert: Converter<'_>,
) -> Result<Option<Constraint>, GrammarError> {
    if tools.is_empty() || matches!(choice, Choice::None) {
        return Ok(None);
    }
    let allowed: Vec<usize> = match choice {
        Choice::Function(name) => {
            vec![tools
                .iter()
                .position(|t| &t.name == name)
                .ok_or_else(|| GrammarError {
                    param: "tool_choice".into(),
                    message: format!("there is no tool named {name:?}"),
                })?]
        }
        _ => (0..tools.len()).collect(),
    };
    let strict = !matches!(choice, Choice::Auto);
    let mut b = Builder {
        convert,
        rules: String::new(),
        tools,
    };
    let family = format.family;
    let (body, triggers) = match (family, family.syntax()) {
        (Family::GptOss, _) => {
            let syn = CallSyntax {
                open: &[],
                array: false,
                call: &[
                    Piece::Lit("<|channel|>commentary to=functions."),
                    Piece::Name,
                    Piece::Lit("<|message|>"),
                    Piece::Args,
                ],
                between: "",
                close: None,
                at_start: false,
                content_recipient: None,
                parallel: false,
            };
            let call = b.calls(&syn, &allowed)?;
            let body = if strict {
                format!("{} {call}", thinking(format.reasoning, false))
            } else {
                call
            };
            (
                body,
                vec![r"[\s\S]*?(<\|channel\|>commentary to=)[\s\S]*".to_string()],
            )
        }
        (_, None) => {
            // The generic answer is always strict: the model was told to answer in JSON.
            let call = b.object_alts(&allowed)?;
            let one =
                format!("\"{{\" tc-ws \"\\\"tool_call\\\"\" tc-ws \":\" tc-ws {call} tc-ws \"}}\"");
            let many = format!("\"{{\" tc-ws \"\\\"tool_calls\\\"\" tc-ws \":\" tc-ws \"[\" tc-ws {call} ( tc-ws \",\" tc-ws {call} )* tc-ws \"]\" tc-ws \"}}\"");
            let mut alts = vec![if parallel { many } else { one }];
            if !strict {
                alts.push(
                    "\"{\" tc-ws \"\\\"response\\\"\" tc-ws \":\" tc-ws tc-string tc-ws \"}\""
                        .into(),
                );
            }
            let body = format!(
                "{} ( {} )",
                thinking(format.reasoning, format.forced_open),
                alts.join(" | ")
            );
            b.rules.push_str(&format!("root ::= {body}\n{COMMON}"));
            return Ok(Some(Constraint {
                grammar: b.rules,
                lazy: false,
                triggers: Vec::new(),
            }));
        }
        (_, Some(syn)) => {
            let call = b.calls(&syn, &allowed)?;
            let many = parallel && syn.parallel;
            let calls = if syn.array {
                let rest = if many {
                    format!(" ( tc-ws \",\" tc-ws {call} )*")
                } else {
                    String::new()
                };
                format!("\"[\" tc-ws {call}{rest} tc-ws \"]\"")
            } else if many {
                let between = if syn.between.trim().is_empty() {
                    String::new()
                } else {
                    format!("{} tc-ws ", lit(syn.between.trim()))
                };
                format!("{call} ( tc-ws {between}{call} )*")
            } else {
                call
            };
            let mut section: Vec<String> = syn.open.iter().map(|o| lit(o)).collect();
            section.push(calls);
            if let Some(c) = syn.close {
                section.push(lit(c));
            }
            let body = section.join(" tc-ws ");
            let body = if strict {
                format!("{} {body}", thinking(format.reasoning, format.forced_open))
            } else {
                body
            };
            let trigger = match syn.start_marker() {
                Some(m) => format!(r"[\s\S]*?({})[\s\S]*", regex_escape(m)),
                None if family == Family::Llama3 => {
                    r"\s*(?:<\|python_tag\|>)?(\{)[\s\S]*".to_string()
                }
                None => {
                    // Functionary v3.2: a call is its function's name on a line of its
                    // own, first or after `>>>`.
                    let names: Vec<String> = allowed
                        .iter()
                        .map(|&t| regex_escape(&tools[t].name))
                        .collect();
                    let names = names.join("|");
                    format!(r"(?:\s*|[\s\S]*?>>>)((?:{names})\s)[\s\S]*")
                }
            };
            (body, vec![trigger])
        }
    };
    b.rules.push_str(&format!("root ::= {body}\n{COMMON}"));
    Ok(Some(Constraint {
        grammar: b.rules,
        lazy: !strict,
        triggers: if strict { Vec::new() } else { triggers },
    }))
}

impl Builder<'_> {
    /// `{"name": ..., "arguments": ...}` for each allowed tool (the generic answer).
    fn object_alts(&mut self, allowed: &[usize]) -> Result<String, GrammarError> {
        let keys = Keys {
            name: "name",
            args: "arguments",
            id: None,
            id_kind: IdKind::Any,
        };
        let mut alts = Vec::new();
        let tools = self.tools;
        for &t in allowed {
            let tool = &tools[t];
            let a = self.schema(&tool.parameters, &format!("t{t}-"), &tool.param)?;
            alts.push(self.object(keys, &tool.name, &a));
        }
        self.rules
            .push_str(&format!("tc-object ::= {}\n", alts.join(" | ")));
        Ok("tc-object".to_string())
    }
}
