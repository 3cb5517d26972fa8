//! Chat templates for tests, by family: the real one from `../shared/chat-templates`
//! when it is there, else a small template of our own that writes the same call syntax
//! (and, for GPT-OSS, of which `../shared` has no copy, always ours: the harmony format).

use crate::shared_dir;

/// A chat template's source, and whether it is the real model's.
pub struct TestTemplate {
    /// The Jinja source.
    pub source: String,
    /// Whether it came from `../shared` (else it is ours).
    pub real: bool,
}

const HERMES: &str = r#"{%- if tools %}<|im_start|>system
# Tools

<tools>
{%- for t in tools %}
{{ t | tojson }}
{%- endfor %}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags.<|im_end|>
{% endif %}
{%- for m in messages %}
{%- if m.role == 'assistant' and m.tool_calls %}<|im_start|>assistant
{%- for tc in m.tool_calls %}
<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif m.role == 'tool' %}<|im_start|>user
<tool_response>
{{ m.content }}
</tool_response><|im_end|>
{% else %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

const LLAMA3: &str = r#"{{- bos_token }}<|start_header_id|>system<|end_header_id|>

Environment: ipython
{%- if tools %}
You have these functions; to call one, answer with {"name": function name, "parameters": arguments}:
{%- for t in tools %}
{{ t | tojson }}
{%- endfor %}
{%- endif %}<|eot_id|>
{%- for m in messages %}
{%- if m.role == 'assistant' and m.tool_calls %}<|start_header_id|>assistant<|end_header_id|>

{%- for tc in m.tool_calls %}
{"name": "{{ tc.function.name }}", "parameters": {{ tc.function.arguments | tojson }}}
{%- endfor %}<|eot_id|>
{%- elif m.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>

{{ m.content }}<|eot_id|>
{%- else %}<|start_header_id|>{{ m.role }}<|end_header_id|>

{{ m.content }}<|eot_id|>
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif %}"#;

const MISTRAL: &str = r#"{{- bos_token }}
{%- if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}
{%- for m in messages %}
{%- if m.role == 'user' %}[INST]{{ m.content }}[/INST]
{%- elif m.role == 'assistant' and m.tool_calls %}[TOOL_CALLS][
{%- for tc in m.tool_calls %}{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}, "id": "{{ tc.id }}"}{% if not loop.last %}, {% endif %}
{%- endfor %}]{{ eos_token }}
{%- elif m.role == 'tool' %}[TOOL_RESULTS]{"content": {{ m.content | tojson }}, "call_id": "{{ m.tool_call_id }}"}[/TOOL_RESULTS]
{%- else %}{{ m.content }}{{ eos_token }}
{%- endif %}
{%- endfor %}"#;

const GPT_OSS: &str = r#"<|start|>system<|message|>You are a helpful assistant.
Reasoning: {{ reasoning_effort | default('medium') }}

# Valid channels: analysis, commentary, final.<|end|>
{%- if tools %}<|start|>developer<|message|># Tools

namespace functions {
{%- for t in tools %}
// {{ t.function.description }}
type {{ t.function.name }} = (_: {{ t.function.parameters | tojson }}) => any;
{%- endfor %}
}<|end|>
{%- endif %}
{%- for m in messages %}
{%- if m.role == 'user' or m.role == 'system' %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>
{%- elif m.role == 'assistant' and m.tool_calls %}
{%- for tc in m.tool_calls %}<|start|>assistant<|channel|>commentary to=functions.{{ tc.function.name }} <|constrain|>json<|message|>{{ tc.function.arguments | tojson }}<|call|>
{%- endfor %}
{%- elif m.role == 'assistant' %}<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>
{%- elif m.role == 'tool' %}<|start|>functions.{{ m.name }} to=assistant<|channel|>commentary<|message|>{{ m.content }}<|end|>
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|start|>assistant{% endif %}"#;

/// The template of `family`: `"hermes"` (Qwen 3), `"llama3"`, `"mistral"` (Mistral
/// Nemo) or `"gpt-oss"`.
pub fn template(family: &str) -> TestTemplate {
    let (file, ours) = match family {
        "hermes" => ("Qwen-Qwen3-0.6B.jinja", HERMES),
        "llama3" => ("meta-llama-Llama-3.2-3B-Instruct.jinja", LLAMA3),
        "mistral" => ("mistralai-Mistral-Nemo-Instruct-2407.jinja", MISTRAL),
        "gpt-oss" => ("", GPT_OSS),
        other => panic!("no test template for {other}"),
    };
    let path = shared_dir().join("chat-templates").join(file);
    if !file.is_empty() {
        if let Ok(source) = std::fs::read_to_string(path) {
            return TestTemplate { source, real: true };
        }
    }
    TestTemplate {
        source: ours.to_string(),
        real: false,
    }
}
