//! Template families: which one a chat template belongs to (an explicit decision list
//! over its source, tested against real templates), and how each writes tool calls and
//! reasoning.

use crate::syntax::{
    json_list, syntax, CallSyntax, Keys, Params, Piece, ReasoningTags, APRIEL_KEYS, COMMAND_KEYS,
    MINICPM_PARAMS, MINIMAX_PARAMS, NEMO_KEYS, OBJ, PLUS_KEYS, QWEN_PARAMS, SEED_PARAMS,
    SHORT_KEYS, THINK,
};

type ParamSyntax = Params;

/// A family of chat templates that write tool calls (and reasoning) the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Hermes 2 Pro, Qwen 2.5 and 3, QwQ, MiMo, Granite 4: `<tool_call>{json}</tool_call>`.
    Hermes,
    /// Qwen3-Coder, Qwen3.5, Nemotron 3, StepFun: `<tool_call><function=..><parameter=..>`.
    QwenXml,
    /// Seed-OSS: `<seed:tool_call><function=..><parameter=..>`.
    SeedOss,
    /// Llama 3.1 to 3.3: a bare `{"name", "parameters"}` object, or after `<|python_tag|>`.
    Llama3,
    /// Mistral Nemo: `[TOOL_CALLS][{"name","arguments","id"}]`.
    MistralNemo,
    /// Mistral Small 3.2: `[TOOL_CALLS]name[CALL_ID]id[ARGS]{json}`.
    MistralV11,
    /// Ministral 3, Devstral, Magistral: `[TOOL_CALLS]name[ARGS]{json}`.
    Ministral,
    /// Functionary v3.1: `<function=name>{json}</function>`.
    FunctionaryV31,
    /// Functionary v3.2: `name\n{json}` after `>>>`.
    FunctionaryV32,
    /// Command R7B, Cohere2: `<|START_ACTION|>[{"tool_call_id","tool_name","parameters"}]`.
    CommandR7b,
    /// Command R+: `Action:` and a fenced JSON list.
    CommandRPlus,
    /// DeepSeek R1: `<｜tool▁call▁begin｜>function<｜tool▁sep｜>name` and fenced JSON.
    DeepSeekR1,
    /// DeepSeek V3.1: `<｜tool▁call▁begin｜>name<｜tool▁sep｜>{json}`.
    DeepSeekV31,
    /// DeepSeek V3.2: DSML `<｜DSML｜function_calls><｜DSML｜invoke name=..>`.
    DeepSeekV32,
    /// DeepSeek V4: DSML with a `tool_calls` section.
    DeepSeekV4,
    /// GPT-OSS (harmony): channels, `to=functions.name`.
    GptOss,
    /// Kimi K2: `<|tool_call_begin|>functions.name:i<|tool_call_argument_begin|>{json}`.
    KimiK2,
    /// GLM 4.5 to 4.7, Laguna: `<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value>`.
    Glm,
    /// MiniMax M2: `<minimax:tool_call><invoke name=..><parameter name=..>`.
    MiniMaxM2,
    /// MiniMax M1: `<tool_calls>` with one JSON object per line.
    MiniMaxM1,
    /// Granite 3.x: `<|tool_call|>[{json}]`.
    Granite,
    /// Nemotron Nano v2: `<TOOLCALL>[{json}]</TOOLCALL>`.
    NemotronV2,
    /// Apriel 1.5 and 1.6: `<tool_calls>[{json}]</tool_calls>`.
    Apriel,
    /// Apertus: `<|tools_prefix|>[{"name": {args}}]<|tools_suffix|>`.
    Apertus,
    /// GigaChat 3.1: `<|function_call|>{json}`.
    GigaChat,
    /// Firefunction v2: ` functools[{json}]`.
    Firefunction,
    /// MiniCPM 5: `<function name=..><param name=..>`.
    MiniCpm,
    /// Any other template: the model is told to answer in JSON, with a tool call or a
    /// response, and the grammar holds it to that.
    Generic,
}

impl Family {
    /// Every family, for tables and tests.
    pub const ALL: [Family; 28] = [
        Family::Hermes,
        Family::QwenXml,
        Family::SeedOss,
        Family::Llama3,
        Family::MistralNemo,
        Family::MistralV11,
        Family::Ministral,
        Family::FunctionaryV31,
        Family::FunctionaryV32,
        Family::CommandR7b,
        Family::CommandRPlus,
        Family::DeepSeekR1,
        Family::DeepSeekV31,
        Family::DeepSeekV32,
        Family::DeepSeekV4,
        Family::GptOss,
        Family::KimiK2,
        Family::Glm,
        Family::MiniMaxM2,
        Family::MiniMaxM1,
        Family::Granite,
        Family::NemotronV2,
        Family::Apriel,
        Family::Apertus,
        Family::GigaChat,
        Family::Firefunction,
        Family::MiniCpm,
        Family::Generic,
    ];

    /// The family of a template, from its source. The order matters where one
    /// family's markers contain another's (every XML family writes `<tool_call>`, which
    /// alone means Hermes).
    pub fn detect(source: &str) -> Family {
        let has = |s: &str| source.contains(s);
        use Family as F;
        if has("<|channel|>") && has("<|message|>") {
            F::GptOss
        } else if has("DSML") {
            if has("function_calls") {
                F::DeepSeekV32
            } else {
                F::DeepSeekV4
            }
        } else if has("tool▁calls▁begin") {
            if has("```json") {
                F::DeepSeekR1
            } else {
                F::DeepSeekV31
            }
        } else if has("<|START_ACTION|>") {
            F::CommandR7b
        } else if has("Action:") && has("<|START_OF_TURN_TOKEN|>") {
            F::CommandRPlus
        } else if has("<|tool_calls_section_begin|>") {
            F::KimiK2
        } else if has("<arg_key>") && has("<arg_value>") {
            F::Glm
        } else if has("<minimax:tool_call>") {
            F::MiniMaxM2
        } else if has("<seed:tool_call>") {
            F::SeedOss
        } else if has("<tool_call>") && has("<function=") && has("<parameter=") {
            F::QwenXml
        } else if has("]<]minimax[>[") {
            // MiniMax M3 writes nested XML arguments: not a native syntax here.
            F::Generic
        } else if has("<tool_calls>") && has("<beginning_of_sentence>") {
            F::MiniMaxM1
        } else if has("<tool_calls>") {
            F::Apriel
        } else if has("<tool_call>") {
            F::Hermes
        } else if has("<TOOLCALL>") {
            F::NemotronV2
        } else if has("<|tool_call|>") {
            F::Granite
        } else if has("<|tools_prefix|>") {
            F::Apertus
        } else if has("<|function_call|>") {
            F::GigaChat
        } else if has(">>>all") {
            F::FunctionaryV32
        } else if has("<|start_header_id|>") && has("<function=") {
            F::FunctionaryV31
        } else if has(" functools[") {
            F::Firefunction
        } else if has("ipython") && has("<|start_header_id|>") {
            F::Llama3
        } else if has("[TOOL_CALLS]") && has("[CALL_ID]") {
            F::MistralV11
        } else if has("[TOOL_CALLS]") && has("[ARGS]") {
            F::Ministral
        } else if has("[TOOL_CALLS]") {
            F::MistralNemo
        } else if has("<function name=") && has("<param name=") {
            F::MiniCpm
        } else {
            F::Generic
        }
    }

    /// A short name, for logs, `ps` and the docs.
    pub fn name(self) -> &'static str {
        use Family as F;
        match self {
            F::Hermes => "hermes",
            F::QwenXml => "qwen3-coder-xml",
            F::SeedOss => "seed-oss",
            F::Llama3 => "llama3",
            F::MistralNemo => "mistral-nemo",
            F::MistralV11 => "mistral-v11",
            F::Ministral => "ministral",
            F::FunctionaryV31 => "functionary-v3.1",
            F::FunctionaryV32 => "functionary-v3.2",
            F::CommandR7b => "command-r7b",
            F::CommandRPlus => "command-r-plus",
            F::DeepSeekR1 => "deepseek-r1",
            F::DeepSeekV31 => "deepseek-v3.1",
            F::DeepSeekV32 => "deepseek-v3.2",
            F::DeepSeekV4 => "deepseek-v4",
            F::GptOss => "gpt-oss",
            F::KimiK2 => "kimi-k2",
            F::Glm => "glm",
            F::MiniMaxM2 => "minimax-m2",
            F::MiniMaxM1 => "minimax-m1",
            F::Granite => "granite",
            F::NemotronV2 => "nemotron-v2",
            F::Apriel => "apriel",
            F::Apertus => "apertus",
            F::GigaChat => "gigachat",
            F::Firefunction => "firefunction",
            F::MiniCpm => "minicpm",
            F::Generic => "generic",
        }
    }

    /// How the family writes calls; `None` for harmony (channels) and the generic JSON
    /// answer, which have readers of their own.
    pub fn syntax(self) -> Option<CallSyntax> {
        use Family as F;
        use Piece::*;
        const DS_BEGIN: &[&str] = &["<｜tool▁calls▁begin｜>"];
        const DS_END: Option<&str> = Some("<｜tool▁calls▁end｜>");
        Some(match self {
            F::Hermes => syntax(&[Lit("<tool_call>"), Object(OBJ), Lit("</tool_call>")]),
            F::QwenXml => syntax(&[
                Lit("<tool_call>"),
                Lit("<function="),
                Name,
                Lit(">"),
                Params(QWEN_PARAMS),
                Lit("</function>"),
                Lit("</tool_call>"),
            ]),
            F::SeedOss => syntax(&[
                Lit("<seed:tool_call>"),
                Lit("<function="),
                Name,
                Lit(">"),
                Params(SEED_PARAMS),
                Lit("</function>"),
                Lit("</seed:tool_call>"),
            ]),
            F::Llama3 => CallSyntax {
                at_start: true,
                parallel: false,
                ..syntax(&[Object(Keys {
                    args: "parameters",
                    ..OBJ
                })])
            },
            F::MistralNemo => json_list(&["[TOOL_CALLS]"], &[Object(NEMO_KEYS)], None),
            F::MistralV11 => CallSyntax {
                between: "",
                ..syntax(&[
                    Lit("[TOOL_CALLS]"),
                    Name,
                    Lit("[CALL_ID]"),
                    Id,
                    Lit("[ARGS]"),
                    Args,
                ])
            },
            F::Ministral => CallSyntax {
                between: "",
                ..syntax(&[Lit("[TOOL_CALLS]"), Name, Lit("[ARGS]"), Args])
            },
            F::FunctionaryV31 => {
                syntax(&[Lit("<function="), Name, Lit(">"), Args, Lit("</function>")])
            }
            F::FunctionaryV32 => CallSyntax {
                at_start: true,
                between: ">>>",
                content_recipient: Some("all"),
                ..syntax(&[Name, Args])
            },
            F::CommandR7b => json_list(
                &["<|START_ACTION|>"],
                &[Object(COMMAND_KEYS)],
                Some("<|END_ACTION|>"),
            ),
            F::CommandRPlus => {
                json_list(&["Action:", "```json"], &[Object(PLUS_KEYS)], Some("```"))
            }
            F::DeepSeekR1 => CallSyntax {
                open: DS_BEGIN,
                close: DS_END,
                between: "",
                ..syntax(&[
                    Lit("<｜tool▁call▁begin｜>"),
                    Lit("function"),
                    Lit("<｜tool▁sep｜>"),
                    Name,
                    Lit("```json"),
                    Args,
                    Lit("```"),
                    Lit("<｜tool▁call▁end｜>"),
                ])
            },
            F::DeepSeekV31 => CallSyntax {
                open: DS_BEGIN,
                close: DS_END,
                between: "",
                ..syntax(&[
                    Lit("<｜tool▁call▁begin｜>"),
                    Name,
                    Lit("<｜tool▁sep｜>"),
                    Args,
                    Lit("<｜tool▁call▁end｜>"),
                ])
            },
            F::DeepSeekV32 | F::DeepSeekV4 => {
                const CALL: &[Piece] = &[
                    Lit("<｜DSML｜invoke name=\""),
                    Name,
                    Lit("\">"),
                    Params(ParamSyntax {
                        open: "<｜DSML｜parameter name=\"",
                        key_end: "\"",
                        value: "",
                        close: "</｜DSML｜parameter>",
                        newlines: false,
                        string_attr: true,
                    }),
                    Lit("</｜DSML｜invoke>"),
                ];
                let (open, close): (&'static [&'static str], _) = if self == F::DeepSeekV32 {
                    (&["<｜DSML｜function_calls>"], "</｜DSML｜function_calls>")
                } else {
                    (&["<｜DSML｜tool_calls>"], "</｜DSML｜tool_calls>")
                };
                CallSyntax {
                    open,
                    close: Some(close),
                    ..syntax(CALL)
                }
            }
            F::KimiK2 => CallSyntax {
                open: &["<|tool_calls_section_begin|>"],
                close: Some("<|tool_calls_section_end|>"),
                between: "",
                ..syntax(&[
                    Lit("<|tool_call_begin|>"),
                    Lit("functions."),
                    Name,
                    Lit(":"),
                    Index,
                    Lit("<|tool_call_argument_begin|>"),
                    Args,
                    Lit("<|tool_call_end|>"),
                ])
            },
            F::Glm => syntax(&[
                Lit("<tool_call>"),
                Name,
                Params(ParamSyntax {
                    open: "<arg_key>",
                    key_end: "</arg_key>",
                    value: "<arg_value>",
                    close: "</arg_value>",
                    newlines: false,
                    string_attr: false,
                }),
                Lit("</tool_call>"),
            ]),
            F::MiniMaxM2 => CallSyntax {
                open: &["<minimax:tool_call>"],
                close: Some("</minimax:tool_call>"),
                ..syntax(&[
                    Lit("<invoke name=\""),
                    Name,
                    Lit("\">"),
                    Params(MINIMAX_PARAMS),
                    Lit("</invoke>"),
                ])
            },
            F::MiniMaxM1 => CallSyntax {
                open: &["<tool_calls>"],
                close: Some("</tool_calls>"),
                ..syntax(&[Object(OBJ)])
            },
            F::Granite => json_list(&["<|tool_call|>"], &[Object(OBJ)], None),
            F::NemotronV2 => json_list(&["<TOOLCALL>"], &[Object(OBJ)], Some("</TOOLCALL>")),
            F::Apriel => json_list(
                &["<tool_calls>"],
                &[Object(APRIEL_KEYS)],
                Some("</tool_calls>"),
            ),
            F::Apertus => json_list(
                &["<|tools_prefix|>"],
                &[Object(SHORT_KEYS)],
                Some("<|tools_suffix|>"),
            ),
            F::GigaChat => CallSyntax {
                parallel: false,
                ..syntax(&[Lit("<|function_call|>"), Object(OBJ)])
            },
            F::Firefunction => json_list(&["functools"], &[Object(OBJ)], None),
            F::MiniCpm => syntax(&[
                Lit("<function name=\""),
                Name,
                Lit("\">"),
                Params(MINICPM_PARAMS),
                Lit("</function>"),
            ]),
            F::GptOss | F::Generic => return None,
        })
    }

    /// How the family marks reasoning in this template, if it reasons at all.
    pub fn reasoning(self, source: &str) -> Option<ReasoningTags> {
        use Family as F;
        let tags = |open, close| Some(ReasoningTags { open, close });
        match self {
            F::SeedOss => tags("<seed:think>", "</seed:think>"),
            F::CommandR7b => tags("<|START_THINKING|>", "<|END_THINKING|>"),
            F::Ministral if source.contains("[THINK]") => tags("[THINK]", "[/THINK]"),
            F::Apertus => tags("<|inner_prefix|>", "<|inner_suffix|>"),
            // Harmony's analysis channel; the harmony reader finds it by channel, these
            // mark that reasoning is on (and what the strict grammar lets through).
            F::GptOss => tags(
                "<|channel|>analysis<|message|>",
                "<|end|><|start|>assistant",
            ),
            _ if source.contains("<think>") || source.contains("</think>") => Some(THINK),
            _ => None,
        }
    }

    /// Markers that wrap the answer's text and are not part of it (Command's
    /// `<|START_RESPONSE|>`, Granite's `<response>`).
    pub fn content_markers(self) -> &'static [&'static str] {
        match self {
            Family::CommandR7b => &[
                "<|START_RESPONSE|>",
                "<|END_RESPONSE|>",
                "<|START_TEXT|>",
                "<|END_TEXT|>",
            ],
            Family::Granite => &["<response>", "</response>"],
            _ => &[],
        }
    }

    /// Whether the template wants call arguments as JSON text, as OpenAI sends them
    /// (most iterate them as an object instead).
    pub fn args_as_text(self) -> bool {
        matches!(self, Family::FunctionaryV31 | Family::FunctionaryV32)
    }

    /// Whether call ids must be nine letters and digits (the template refuses others).
    pub fn nine_char_ids(self) -> bool {
        matches!(
            self,
            Family::MistralNemo | Family::MistralV11 | Family::Ministral
        )
    }
}
